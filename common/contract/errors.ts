// Errors cross the boundary as {error:{...}} and are rebuilt into an Error on the other side,
// so the renderer sees the real message, hint and failing command (Podman's encode/decode).
import { z } from 'zod';

export const WireError = z.object({
  name: z.string().max(128),
  message: z.string().max(64 * 1024),
  code: z.string().max(128).optional(),
  hint: z.string().max(4096).optional(),
  /** zod issues of a rejected payload: where and what. */
  issues: z.array(z.object({ path: z.string(), message: z.string() })).max(50).optional(),
});
export type WireError = z.infer<typeof WireError>;

export const Envelope = z.union([z.object({ result: z.unknown() }).strict(), z.object({ error: WireError }).strict()]);
export type Envelope = { result: unknown } | { error: WireError };

/** An error raised on the other side of the contract, rebuilt here. */
export class ContractError extends Error {
  readonly code?: string;
  readonly hint?: string;
  readonly issues?: WireError['issues'];
  constructor(wire: WireError) {
    super(wire.message);
    this.name = wire.name === 'Error' ? 'ContractError' : wire.name;
    if (wire.code !== undefined) this.code = wire.code;
    if (wire.hint !== undefined) this.hint = wire.hint;
    if (wire.issues !== undefined) this.issues = wire.issues;
  }
}

/** Thrown by validation: the payload does not match the channel's schema. */
export class PayloadError extends Error {
  readonly code = 'contract.invalid-payload';
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[],
  ) {
    super(message);
    this.name = 'PayloadError';
  }
}

export function encodeError(err: unknown): { error: WireError } {
  const e = err instanceof Error ? err : new Error(typeof err === 'string' ? err : 'unknown error');
  const extra = e as Error & { code?: unknown; hint?: unknown; issues?: unknown };
  const wire: WireError = { name: e.name.slice(0, 128), message: (e.message || String(err)).slice(0, 64 * 1024) };
  if (typeof extra.code === 'string') wire.code = extra.code.slice(0, 128);
  if (typeof extra.hint === 'string') wire.hint = extra.hint.slice(0, 4096);
  if (Array.isArray(extra.issues)) wire.issues = (extra.issues as { path: string; message: string }[]).slice(0, 50);
  return { error: wire };
}

export function decodeEnvelope(value: unknown): unknown {
  const parsed = Envelope.safeParse(value);
  if (!parsed.success) throw new PayloadError('malformed reply from main (neither {result} nor {error})', []);
  if ('error' in parsed.data) throw new ContractError(parsed.data.error);
  return parsed.data.result;
}
