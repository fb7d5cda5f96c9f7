// Frames of the WebSocket bridge. Client -> server: requests. Server -> client: replies and events.
import { z } from 'zod';
import { WireError } from './errors';

export const MAX_FRAME_BYTES = 8 * 1024 * 1024;

export const ClientFrame = z
  .object({ kind: z.literal('request'), id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), channel: z.string().max(64), payload: z.unknown() })
  .strict();
export type ClientFrame = z.infer<typeof ClientFrame>;

export const ServerFrame = z.union([
  z.object({ kind: z.literal('reply'), id: z.number().int().min(-1), result: z.unknown() }).strict(),
  z.object({ kind: z.literal('reply'), id: z.number().int().min(-1), error: WireError }).strict(),
  z.object({ kind: z.literal('event'), channel: z.string(), payload: z.unknown() }).strict(),
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
