// The preload: `window.kubedos` as two functions over the contract's channels, each refusing a
// channel the contract does not list. No raw ipcRenderer and no event objects reach the page;
// `on` returns its unsubscribe. Main validates every request (and the sender) and the renderer
// validates every reply and event, so the preload only forwards. Built as ONE CommonJS file
// (sandboxed preloads cannot load ESM).
import { contextBridge, ipcRenderer } from 'electron';
import type { IpcRendererEvent } from 'electron';
import type { PreloadBridge } from '../common/contract/api';
import { ipcChannel, isEventChannel, isRequestChannel } from '../common/contract/channels';

const bridge: PreloadBridge = {
  transport: 'electron',
  invoke(channel, request) {
    if (!isRequestChannel(channel)) return Promise.reject(new Error(`kubedos: "${String(channel).slice(0, 60)}" is not a request channel of the contract`));
    return ipcRenderer.invoke(ipcChannel(channel), request);
  },
  on(channel, listener) {
    if (!isEventChannel(channel)) throw new Error(`kubedos: "${String(channel).slice(0, 60)}" is not an event channel of the contract`);
    const wrapped = (_event: IpcRendererEvent, payload: unknown): void => listener(payload);
    ipcRenderer.on(ipcChannel(channel), wrapped);
    return () => {
      ipcRenderer.removeListener(ipcChannel(channel), wrapped);
    };
  },
};

contextBridge.exposeInMainWorld('kubedos', bridge);
