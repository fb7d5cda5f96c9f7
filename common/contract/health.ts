// The workbench's live cluster health (common/health/now.ts): the same engine call as
// `kubedos status SPEC --health` (main/health/service.ts). Never deployed here, stopped or
// destroyed: answered from the journal, nothing contacted; otherwise the hub's watcher report is
// read through the target's guest agent. A cluster that cannot be read is an answer (its
// `unavailable` says why), not an error.
import { z } from 'zod';
import { ClusterHealthNow } from '../health/now';
import { MAX_SPEC_BYTES } from '../spec/parse';
import { DeployTarget } from './deploy';

export const HEALTH_REQUESTS = {
  'health.now': { request: z.object({ text: z.string().max(MAX_SPEC_BYTES), target: DeployTarget }).strict(), result: ClusterHealthNow },
} as const;
