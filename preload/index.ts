// The preload: `window.kubedos` as a few small named functions over the contract's channels.
// No raw ipcRenderer and no event objects reach the page; every on… returns its unsubscribe.
// Main validates every request and the renderer validates every reply and event, so the
// preload only forwards. Built as ONE CommonJS file (sandboxed preloads cannot load ESM).
import { contextBridge, ipcRenderer } from 'electron';
import type { IpcRendererEvent } from 'electron';
import type { PreloadBridge } from '../common/contract/api';
import { ipcChannel } from '../common/contract/channels';
import type { EventChannel, RequestChannel } from '../common/contract/channels';

const invoke = (channel: RequestChannel, payload: unknown): Promise<unknown> => ipcRenderer.invoke(ipcChannel(channel), payload);

function subscribe(channel: EventChannel, listener: (payload: unknown) => void): () => void {
  const wrapped = (_event: IpcRendererEvent, payload: unknown): void => listener(payload);
  ipcRenderer.on(ipcChannel(channel), wrapped);
  return () => {
    ipcRenderer.removeListener(ipcChannel(channel), wrapped);
  };
}

const bridge: PreloadBridge = {
  transport: 'electron',
  appInfo: () => invoke('app.info', {}),
  parseSpec: (text) => invoke('spec.parse', { text }),
  listTemplates: () => invoke('spec.templates', {}),
  template: (name) => invoke('spec.template', { name }),
  listSpecs: () => invoke('spec.list', {}),
  openSpec: (path) => invoke('spec.open', path === undefined ? {} : { path }),
  saveSpec: (text, path) => invoke('spec.save', path === undefined ? { text } : { path, text }),
  computePlan: (text) => invoke('plan.compute', { text }),
  runPipeline: (pipeline, text, name) => invoke('pipeline.run', name === undefined ? { pipeline, text } : { pipeline, text, name }),
  cancelPipeline: (runId) => invoke('pipeline.cancel', { runId }),
  deployTargets: () => invoke('deploy.targets', {}),
  checkDeployTarget: (request) => invoke('deploy.checkTarget', request),
  acceptHostKey: (request) => invoke('deploy.acceptHostKey', request),
  reviewDeploy: (request) => invoke('deploy.review', request),
  runDeploy: (request) => invoke('deploy.run', request),
  onPipelineEvents: (listener) => subscribe('pipeline.events', listener),
  onAppCommand: (listener) => subscribe('app.command', listener),
};

contextBridge.exposeInMainWorld('kubedos', bridge);
