// Transport 1, main side: one ipcMain.handle per request channel of the contract, each
// checking the sender (only our window, only our own kubedos:// page) before the payload is
// validated and dispatched. Unknown channels are never registered, so they are never answered.
// Written against the small slice of Electron's API it needs, so tests can pass a fake ipcMain.
import type { EventChannel, EventOf } from '../../common/contract/index';
import { encodeError, ipcChannel, parseEvent, REQUEST_CHANNELS } from '../../common/contract/index';
import type { Envelope } from '../../common/contract/index';
import { dispatch } from './dispatch';
import type { Handlers } from './dispatch';

/** The part of IpcMainInvokeEvent we look at. */
export interface InvokeEventLike {
  sender: { id: number };
  /** WebFrameMain: `parent` is null for the top frame. */
  senderFrame: { url: string; parent?: unknown } | null;
}

export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => Promise<Envelope> | Envelope): void;
  removeHandler(channel: string): void;
}

export class UntrustedSenderError extends Error {
  readonly code = 'ipc.untrusted-sender';
  constructor(url: string) {
    super(`request from an untrusted frame refused (${url.slice(0, 200) || 'no frame'})`);
    this.name = 'UntrustedSenderError';
  }
}

/** The renderer is served from this origin (see main/index.ts protocol handler). */
export const APP_ORIGIN = 'kubedos://app';

/** True when the request comes from our window's top frame showing our own page. */
export function trustedSender(windowWebContentsId: () => number | undefined, origin = APP_ORIGIN): (event: InvokeEventLike) => boolean {
  return (event) => {
    if (event.sender.id !== windowWebContentsId()) return false;
    // The top frame only: a subframe (whatever its URL claims) never speaks for the window.
    if (!event.senderFrame || event.senderFrame.parent !== null) return false;
    // kubedos: is not a special scheme, so URL.origin would be "null": compare the prefix.
    return event.senderFrame.url.startsWith(`${origin}/`);
  };
}

/** Registers every request channel; returns the function that removes them again. */
export function registerIpcHandlers(ipcMain: IpcMainLike, handlers: Handlers, isTrusted: (event: InvokeEventLike) => boolean): () => void {
  for (const channel of REQUEST_CHANNELS) {
    ipcMain.handle(ipcChannel(channel), async (event, ...args) => {
      if (!isTrusted(event)) return encodeError(new UntrustedSenderError(event.senderFrame?.url ?? ''));
      if (args.length > 1) return dispatch(handlers, channel, { __tooManyArguments: args.length });
      return dispatch(handlers, channel, args[0]);
    });
  }
  return () => {
    for (const channel of REQUEST_CHANNELS) ipcMain.removeHandler(ipcChannel(channel));
  };
}

/** Validates an event before it is sent to the renderer. */
export function eventSender(send: (channel: string, payload: unknown) => void): <C extends EventChannel>(channel: C, payload: EventOf<C>) => void {
  return (channel, payload) => send(ipcChannel(channel), parseEvent(channel, payload));
}
