// The last measured wiring check of a deployed cluster, as `kubedos wiring check` records it in
// the cluster's workspace (wiring/last-check.json) and the workbench's Wiring view shows it.
// Bounded: the counts are exact, the disagreeing flows are the first MAX_RECORDED_MISMATCHES.
import { z } from 'zod';
import { PlaneName } from '../spec/schema';

export const MAX_RECORDED_MISMATCHES = 50;

export const Observed = z.enum(['open', 'timeout', 'refused', 'error']);

export const WiringMismatch = z.object({
  fromNode: z.string(),
  fromPlane: z.string(),
  from: z.string(),
  toNode: z.string(),
  toPlane: z.string(),
  to: z.string(),
  port: z.number().int(),
  expect: z.enum(['allow', 'deny']),
  observed: Observed,
  error: z.string().optional(),
});
export type WiringMismatch = z.infer<typeof WiringMismatch>;

/** Age of the hub's last WireGuard handshake with a node on one plane; null: never. */
export const HandshakeAge = z.object({
  node: z.string(),
  plane: PlaneName,
  ageSeconds: z.number().int().nonnegative().nullable(),
});
export type HandshakeAge = z.infer<typeof HandshakeAge>;

export const WiringLastCheck = z.object({
  cluster: z.string(),
  /** ISO time the check finished (wall clock of the machine that ran it). */
  checkedAt: z.string(),
  target: z.string(),
  hub: z.string(),
  flows: z.number().int().nonnegative(),
  passed: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  durationMs: z.number().int().nonnegative(),
  mismatches: z.array(WiringMismatch).max(MAX_RECORDED_MISMATCHES),
  handshakes: z.array(HandshakeAge),
  /** Why the handshake ages could not be read (the flows were still checked). */
  handshakeError: z.string().optional(),
  counters: z.object({ before: z.record(z.string(), z.number()), after: z.record(z.string(), z.number()) }),
});
export type WiringLastCheck = z.infer<typeof WiringLastCheck>;
