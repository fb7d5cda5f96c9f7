// What the renderer programs against, whatever the transport: `window.kubedos` in Electron
// (preload) or the WebSocket bridge in a browser (renderer/platform).
import type { EventChannel, RequestChannel } from './channels';
import type { EventOf } from './events';
import type { RequestOf, ResultOf } from './requests';

export interface KubedosApi {
  invoke<C extends RequestChannel>(channel: C, request: RequestOf<C>): Promise<ResultOf<C>>;
  /** Subscribes to an event channel; returns the unsubscribe function. */
  on<C extends EventChannel>(channel: C, listener: (payload: EventOf<C>) => void): () => void;
}

/** The small named functions the Electron preload exposes as `window.kubedos`. */
export interface PreloadBridge {
  readonly transport: 'electron';
  appInfo(): Promise<unknown>;
  parseSpec(text: string): Promise<unknown>;
  listTemplates(): Promise<unknown>;
  template(name: string): Promise<unknown>;
  listSpecs(): Promise<unknown>;
  openSpec(path?: string): Promise<unknown>;
  saveSpec(text: string, path?: string): Promise<unknown>;
  computePlan(text: string): Promise<unknown>;
  runPipeline(pipeline: 'plan', text: string, name?: string): Promise<unknown>;
  cancelPipeline(runId: string): Promise<unknown>;
  deployTargets(): Promise<unknown>;
  checkDeployTarget(request: RequestOf<'deploy.checkTarget'>): Promise<unknown>;
  acceptHostKey(request: RequestOf<'deploy.acceptHostKey'>): Promise<unknown>;
  reviewDeploy(request: RequestOf<'deploy.review'>): Promise<unknown>;
  runDeploy(request: RequestOf<'deploy.run'>): Promise<unknown>;
  onPipelineEvents(listener: (events: unknown) => void): () => void;
  onAppCommand(listener: (command: unknown) => void): () => void;
}
