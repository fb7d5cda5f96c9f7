// The workbench's binding of the cluster lifecycle (main/lifecycle/service.ts): the same engine
// calls as `kubedos stop|start|destroy`, with the events batched onto pipeline.events and the run
// cancellable through pipeline.cancel like a deploy.
import type { DestroyPreview, LifecycleOutcome, RequestParsed } from '../../common/contract/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import { DeployRequestError } from '../deploy/service';
import type { LifecycleRequest } from '../lifecycle/service';
import { destroyCluster, previewDestroy, startCluster, stopCluster } from '../lifecycle/service';

export interface LifecycleBinding {
  env: NodeJS.ProcessEnv;
  sshConfigPath: string;
  knownHostsPath: string;
  /** Bounded signal for the preview (an inventory must not hang the dialog). */
  bounded: () => AbortSignal;
  /** Starts tracking a run: events go to the workbench's batcher; returns the run's abort signal and its end. */
  track: () => { signal: AbortSignal; onEvent: (e: PipelineEvent) => void; end: () => void };
}

function request(b: LifecycleBinding, target: LifecycleRequest['target'], text: string, signal: AbortSignal, onEvent?: (e: PipelineEvent) => void): LifecycleRequest {
  return { specText: text, target, env: b.env, by: 'workbench', sshConfigPath: b.sshConfigPath, knownHostsPath: b.knownHostsPath, signal, ...(onEvent ? { onEvent } : {}) };
}

export async function lifecyclePreview(b: LifecycleBinding, r: RequestParsed<'lifecycle.preview'>): Promise<DestroyPreview> {
  return previewDestroy(request(b, r.target, r.text, b.bounded()), r.keepWorkspace ?? false);
}

export async function lifecycleRun(b: LifecycleBinding, r: RequestParsed<'lifecycle.run'>): Promise<LifecycleOutcome> {
  if (r.action === 'destroy' && !r.allowDestroy) throw new DeployRequestError('lifecycle.destroy-refused', 'destroy needs allowDestroy: true; nothing was removed', 'confirm the destroy in the dialog');
  const t = b.track();
  try {
    const req = request(b, r.target, r.text, t.signal, t.onEvent);
    if (r.action === 'stop') return await stopCluster(req);
    if (r.action === 'start') return await startCluster(req);
    const { preview: _p, ...o } = await destroyCluster({ ...req, allowDestroy: true, keepWorkspace: r.keepWorkspace ?? false, dryRun: false });
    return o;
  } finally {
    t.end();
  }
}
