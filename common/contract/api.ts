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

/**
 * What the Electron preload exposes as `window.kubedos`: two functions gated by the contract's
 * channel lists (a channel not in REQUEST_CHANNELS / EVENT_CHANNELS is refused in the preload
 * itself), so a new channel is added in one place (channels.ts + its schemas) and nowhere else.
 * Payloads stay untyped here: main validates every request, the renderer every reply and event.
 */
export interface PreloadBridge {
  readonly transport: 'electron';
  invoke(channel: string, request: unknown): Promise<unknown>;
  /** Returns the unsubscribe function; the listener never sees Electron's event object. */
  on(channel: string, listener: (payload: unknown) => void): () => void;
}
