// Validation of what crosses the boundary, in both directions.
import type { z } from 'zod';
import type { EventChannel, RequestChannel } from './channels';
import { isEventChannel, isRequestChannel } from './channels';
import { PayloadError } from './errors';
import { EVENTS } from './events';
import type { EventOf } from './events';
import { REQUESTS } from './requests';
import type { RequestParsed, ResultOf } from './requests';

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 50).map((i) => ({ path: i.path.map(String).join('.') || '(payload)', message: i.message }));
  const first = issues[0];
  throw new PayloadError(`${what}: ${first ? `${first.path}: ${first.message}` : 'invalid'}`, issues);
}

export function parseRequest<C extends RequestChannel>(channel: C, payload: unknown): RequestParsed<C> {
  if (!isRequestChannel(channel)) throw new PayloadError(`unknown channel ${JSON.stringify(String(channel)).slice(0, 80)}`, []);
  return check(REQUESTS[channel].request as unknown as z.ZodType<RequestParsed<C>>, payload, `invalid ${channel} request`);
}

export function parseResult<C extends RequestChannel>(channel: C, result: unknown): ResultOf<C> {
  return check(REQUESTS[channel].result as unknown as z.ZodType<ResultOf<C>>, result, `invalid ${channel} result`);
}

export function parseEvent<C extends EventChannel>(channel: C, payload: unknown): EventOf<C> {
  if (!isEventChannel(channel)) throw new PayloadError(`unknown event channel ${JSON.stringify(String(channel)).slice(0, 80)}`, []);
  return check(EVENTS[channel] as unknown as z.ZodType<EventOf<C>>, payload, `invalid ${channel} event`);
}
