// The node terminal over the contract: open a shell on a node of the spec's deployed cluster
// (through the hub over wg1, host keys pinned by first boot), then keystrokes and resizes in,
// output frames and the exit out. Output is UTF-8 text in frames batched by main (about one per
// animation frame), so a node printing megabytes per second stays a few dozen messages per second.
import { z } from 'zod';
import { MAX_SPEC_BYTES } from '../spec/parse';

export const TerminalId = z.string().regex(/^[0-9a-f]{16}$/, 'a terminal session id');
const Cols = z.number().int().min(2).max(1000);
const Rows = z.number().int().min(1).max(500);

export const TerminalOpenRequest = z
  .object({
    text: z.string().max(MAX_SPEC_BYTES),
    node: z.string().min(1).max(63),
    cols: Cols,
    rows: Rows,
    /** Reach the hub at this address instead of its wg1 address. */
    via: z.string().max(255).optional(),
  })
  .strict();

export const TerminalOpened = z.object({
  id: TerminalId,
  node: z.string(),
  /** "user@host:port" of each hop, for the panel's header. */
  hops: z.array(z.string()),
  /** Where the transcript is written (its sha256 is recorded when the session ends). */
  transcriptFile: z.string().optional(),
});
export type TerminalOpened = z.infer<typeof TerminalOpened>;

export const TerminalOutput = z.object({ id: TerminalId, data: z.string().max(4 * 1024 * 1024) }).strict();
export const TerminalExited = z
  .object({
    id: TerminalId,
    exitCode: z.number().int().nullable(),
    signal: z.string().optional(),
    transcript: z.object({ file: z.string(), sha256: z.string(), bytes: z.number().int() }).optional(),
  })
  .strict();
export type TerminalExited = z.infer<typeof TerminalExited>;

export const TERMINAL_REQUESTS = {
  'terminal.open': { request: TerminalOpenRequest, result: TerminalOpened },
  /** Keystrokes or pasted text (at most 1 MiB at once). */
  'terminal.input': { request: z.object({ id: TerminalId, data: z.string().max(1024 * 1024) }).strict(), result: z.object({ ok: z.boolean() }) },
  'terminal.resize': { request: z.object({ id: TerminalId, cols: Cols, rows: Rows }).strict(), result: z.object({ ok: z.boolean() }) },
  'terminal.close': { request: z.object({ id: TerminalId }).strict(), result: z.object({ ok: z.boolean() }) },
} as const;

export const TERMINAL_EVENTS = {
  'terminal.output': TerminalOutput,
  'terminal.exit': TerminalExited,
} as const;
