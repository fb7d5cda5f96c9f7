// The event map: main -> renderer pushes. Pipeline events travel in batches so a stage that
// logs 10,000 lines/s costs a few dozen messages per second, not 10,000.
import { z } from 'zod';
import { DrillEvent } from '../drills/live';
import { PipelineEvent } from '../pipeline/events';
import type { EventChannel } from './channels';
import { TERMINAL_EVENTS } from './terminal';
import { USB_EVENTS } from './usb';

export const APP_COMMANDS = ['view.spec', 'view.topology', 'view.wiring', 'view.pipeline', 'view.artifacts', 'view.drills', 'view.deploy', 'view.recovery', 'spec.new', 'spec.open', 'spec.save', 'spec.saveAs', 'theme.toggle', 'pipeline.run'] as const;
export const AppCommand = z.enum(APP_COMMANDS);
export type AppCommand = z.infer<typeof AppCommand>;

export const EVENTS = {
  'pipeline.events': z.array(PipelineEvent).min(1).max(100_000),
  /** A menu item or accelerator of the Electron app menu. */
  'app.command': z.object({ command: AppCommand }).strict(),
  ...TERMINAL_EVENTS,
  /** A running drill: its record at every phase change, and its log lines. */
  'drills.events': z.array(DrillEvent).min(1).max(1000),
  ...USB_EVENTS,
} as const satisfies Record<EventChannel, z.ZodType>;

export type EventOf<C extends EventChannel> = z.output<(typeof EVENTS)[C]>;
