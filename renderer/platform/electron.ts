// Transport 1 in the renderer: the preload's invoke/on, replies decoded and validated against
// the contract (the preload only forwards).
import type { EventChannel, EventOf, KubedosApi, PreloadBridge, RequestChannel, RequestOf, ResultOf } from '../../common/contract/index';
import { decodeEnvelope, parseEvent, parseResult } from '../../common/contract/index';

export function electronApi(bridge: PreloadBridge): KubedosApi {
  return {
    async invoke<C extends RequestChannel>(channel: C, request: RequestOf<C>): Promise<ResultOf<C>> {
      return parseResult(channel, decodeEnvelope(await bridge.invoke(channel, request)));
    },
    on<C extends EventChannel>(channel: C, listener: (payload: EventOf<C>) => void): () => void {
      return bridge.on(channel, (payload) => {
        try {
          listener(parseEvent(channel, payload));
        } catch (err) {
          console.error(`dropped a malformed ${channel} event from main:`, err);
        }
      });
    },
  };
}
