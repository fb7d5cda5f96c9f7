// The workbench's trust operations: the inventory of the cluster's certificates (as `kubedos trust
// list`), and revoke / rotate / enrollment window (as `kubedos trust revoke|rotate|window`), which
// run on the namespace lab of the plan (`lab: true`) — a deployed cluster cannot be reached yet,
// and a request without `lab` is refused with that reason, nothing changed.
import { z } from 'zod';
import { MAX_SPEC_BYTES } from '../spec/parse';
import { TrustInventory } from '../trust/inventory';
import { TrustOperation, TrustOpReport } from '../trust/operations';

const SpecText = z.string().max(MAX_SPEC_BYTES);

export const TRUST_REQUESTS = {
  /** The certificates in the spec's cluster workspace with days left and rotation status. */
  'trust.inventory': { request: z.object({ text: SpecText }).strict(), result: TrustInventory },
  /** One trust operation; the reply says what changed and what did not. */
  'trust.run': { request: z.object({ text: SpecText, operation: TrustOperation, lab: z.boolean() }).strict(), result: TrustOpReport },
} as const;
