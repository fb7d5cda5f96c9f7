// Transport 2 in the renderer: JSON frames over one WebSocket to `kubedos serve`.
import type { EventChannel, EventOf, KubedosApi, RequestChannel, RequestOf, ResultOf } from '../../common/contract/index';
import { ContractError, decodeEnvelope, isEventChannel, parseEvent, parseResult, ServerFrame } from '../../common/contract/index';

export interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (ev: { data?: unknown }) => void): void;
}

export function connectWebSocket(url: string, create: (url: string) => SocketLike = (u) => new WebSocket(u) as unknown as SocketLike): Promise<KubedosApi & { closed: Promise<void> }> {
  return new Promise((resolveConnect, rejectConnect) => {
    const ws = create(url);
    let nextId = 1;
    let open = false;
    const pending = new Map<number, { channel: RequestChannel; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    const listeners = new Map<EventChannel, Set<(payload: never) => void>>();
    let markClosed: () => void = () => {};
    const closed = new Promise<void>((r) => (markClosed = r));

    ws.addEventListener('message', (ev) => {
      let frame: ServerFrame;
      try {
        frame = ServerFrame.parse(JSON.parse(String(ev.data)));
      } catch (err) {
        console.error('malformed frame from the bridge', err);
        return;
      }
      if (frame.kind === 'event') {
        if (!isEventChannel(frame.channel)) return;
        let payload: unknown;
        try {
          payload = parseEvent(frame.channel, frame.payload);
        } catch (err) {
          console.error(`dropped a malformed ${frame.channel} event`, err);
          return;
        }
        for (const l of listeners.get(frame.channel) ?? []) (l as (p: unknown) => void)(payload);
        return;
      }
      const p = pending.get(frame.id);
      if (!p) {
        if ('error' in frame) console.error('bridge error:', frame.error.message);
        return;
      }
      pending.delete(frame.id);
      try {
        p.resolve(parseResult(p.channel, decodeEnvelope('error' in frame ? { error: frame.error } : { result: frame.result })));
      } catch (err) {
        p.reject(err as Error);
      }
    });
    ws.addEventListener('close', () => {
      for (const p of pending.values()) p.reject(new ContractError({ name: 'BridgeClosed', message: 'the connection to kubedos serve closed', hint: 'is `kubedos serve` still running? reload the page' }));
      pending.clear();
      markClosed();
      if (!open) rejectConnect(new Error('could not connect to kubedos serve: no session (the printed URL works once) or the server stopped; restart kubedos serve and open the URL it prints'));
    });
    ws.addEventListener('open', () => {
      open = true;
      resolveConnect({
        closed,
        invoke<C extends RequestChannel>(channel: C, request: RequestOf<C>): Promise<ResultOf<C>> {
          return new Promise((resolve, reject) => {
            if (ws.readyState !== 1) return reject(new Error('not connected to kubedos serve'));
            const id = nextId++;
            pending.set(id, { channel, resolve: resolve as (v: unknown) => void, reject });
            ws.send(JSON.stringify({ kind: 'request', id, channel, payload: request }));
          });
        },
        on<C extends EventChannel>(channel: C, listener: (payload: EventOf<C>) => void): () => void {
          const set = listeners.get(channel) ?? new Set();
          listeners.set(channel, set);
          set.add(listener as (payload: never) => void);
          return () => {
            set.delete(listener as (payload: never) => void);
          };
        },
      });
    });
  });
}
