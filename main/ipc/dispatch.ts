// The one request path shared by both transports: check the channel, validate the request,
// run the handler, validate the result, and answer {result} | {error}. It never throws, so a
// malformed message cannot take main down.
import type { Envelope, RequestChannel, RequestParsed, ResultOf } from '../../common/contract/index';
import { encodeError, isRequestChannel, parseRequest, parseResult, PayloadError } from '../../common/contract/index';

export type Handlers = { [C in RequestChannel]: (request: RequestParsed<C>) => Promise<ResultOf<C>> | ResultOf<C> };

export async function dispatch(handlers: Handlers, channel: unknown, payload: unknown): Promise<Envelope> {
  try {
    if (!isRequestChannel(channel)) throw new PayloadError(`unknown channel ${JSON.stringify(String(channel)).slice(0, 80)}`, []);
    const request = parseRequest(channel, payload);
    const handler = handlers[channel] as (r: unknown) => Promise<unknown> | unknown;
    const result = await handler(request);
    return { result: parseResult(channel, result) };
  } catch (err) {
    return encodeError(err);
  }
}
