// The workbench's wiring check: the last measured check of the spec's cluster (as recorded by
// `kubedos wiring check`), and "check now", the same engine call (main/wiring/service.ts) on the
// deployed cluster through the guest agents. A cluster that was never deployed or is stopped is
// refused with the journal's words; nothing is probed.
import { z } from 'zod';
import { MAX_SPEC_BYTES } from '../spec/parse';
import { WiringLastCheck } from '../wiring/last-check';
import { DeployTarget } from './deploy';

const SpecText = z.string().max(MAX_SPEC_BYTES);

export const WIRING_REQUESTS = {
  /** The last recorded check of the spec's cluster; neither field when none has run. */
  'wiring.lastCheck': { request: z.object({ text: SpecText }).strict(), result: z.object({ check: WiringLastCheck.optional(), error: z.string().optional() }) },
  /** Runs the check on the deployed cluster now and records it; the reply is the new last check. */
  'wiring.check': { request: z.object({ text: SpecText, target: DeployTarget }).strict(), result: WiringLastCheck },
} as const;
