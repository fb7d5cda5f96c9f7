// Channel names of the workbench contract. One list, used by the preload, main/ipc, the
// WebSocket bridge and the renderer, so a typo is a type error instead of a silent no-op.
export const REQUEST_CHANNELS = [
  'app.info',
  'spec.parse',
  'spec.templates',
  'spec.template',
  'spec.list',
  'spec.open',
  'spec.save',
  'plan.compute',
  'pipeline.run',
  'pipeline.cancel',
  'deploy.targets',
  'deploy.checkTarget',
  'deploy.acceptHostKey',
  'deploy.review',
  'deploy.run',
  'drills.history',
  'drills.check',
  'drills.run',
  'drills.cancel',
  'drills.report',
  'drills.heal',
  'artifacts.overview',
  'recovery.inspect',
  'usb.devices',
  'usb.write',
  'usb.verify',
  'usb.cancel',
  'restore.run',
  'lifecycle.preview',
  'lifecycle.run',
  'terminal.open',
  'terminal.input',
  'terminal.resize',
  'terminal.close',
  'trust.inventory',
  'trust.run',
  'wiring.lastCheck',
  'wiring.check',
  'health.now',
  'upgrade.progress',
] as const;
export type RequestChannel = (typeof REQUEST_CHANNELS)[number];

export const EVENT_CHANNELS = ['pipeline.events', 'app.command', 'terminal.output', 'terminal.exit', 'drills.events', 'usb.progress'] as const;
export type EventChannel = (typeof EVENT_CHANNELS)[number];

/** Electron IPC channel names are namespaced so they never collide with Electron's own. */
export const IPC_PREFIX = 'kubedos:';
export const ipcChannel = (channel: RequestChannel | EventChannel): string => `${IPC_PREFIX}${channel}`;

export function isRequestChannel(value: unknown): value is RequestChannel {
  return typeof value === 'string' && (REQUEST_CHANNELS as readonly string[]).includes(value);
}
export function isEventChannel(value: unknown): value is EventChannel {
  return typeof value === 'string' && (EVENT_CHANNELS as readonly string[]).includes(value);
}
