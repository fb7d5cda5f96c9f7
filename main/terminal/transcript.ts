// A node terminal's transcript: every byte the node sent (the shell's output, which carries the
// echo of what was typed), written to a private file as it arrives and hashed on the way. When the
// session ends its sha256, size and times are appended to <workspace>/terminal/transcripts.jsonl,
// so a transcript can later be checked against the record (sha256sum FILE).
import { createHash, randomBytes } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { appendFileSync, closeSync, constants, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { readJsonLines } from '../pipeline/journal';
import { makePrivateDir } from '../workspace';

export const TranscriptRecord = z.object({
  node: z.string(),
  file: z.string(),
  startedAt: z.string(),
  endedAt: z.string(),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  command: z.string().optional(),
  exitCode: z.number().int().nullable(),
});
export type TranscriptRecord = z.infer<typeof TranscriptRecord>;

export const TRANSCRIPT_DIR = 'terminal';
export const TRANSCRIPT_INDEX = 'transcripts.jsonl';

export class TranscriptWriter {
  private readonly fd: number;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  private closed: TranscriptRecord | undefined;
  readonly file: string;
  private readonly startedAt: string;

  constructor(
    private readonly workspace: string,
    private readonly node: string,
    private readonly command?: string,
    now: Date = new Date(),
  ) {
    const dir = makePrivateDir(join(workspace, TRANSCRIPT_DIR));
    this.startedAt = now.toISOString();
    const stamp = this.startedAt.replace(/[:.]/g, '-');
    this.file = join(dir, `${node}-${stamp}-${randomBytes(3).toString('hex')}.log`);
    this.fd = openSync(this.file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  }

  write(chunk: Uint8Array): void {
    if (this.closed) return;
    this.hash.update(chunk);
    this.bytes += chunk.length;
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
  }

  /** Closes the file and records its hash; idempotent (the first call's record is returned). */
  close(exitCode: number | null, now: Date = new Date()): TranscriptRecord {
    if (this.closed) return this.closed;
    closeSync(this.fd);
    const record: TranscriptRecord = {
      node: this.node,
      file: this.file,
      startedAt: this.startedAt,
      endedAt: now.toISOString(),
      bytes: this.bytes,
      sha256: this.hash.digest('hex'),
      ...(this.command !== undefined ? { command: this.command } : {}),
      exitCode,
    };
    appendFileSync(join(this.workspace, TRANSCRIPT_DIR, TRANSCRIPT_INDEX), `${JSON.stringify(record)}\n`, { mode: 0o600 });
    this.closed = record;
    return record;
  }
}

/** The transcript records of a workspace, oldest first (damaged lines skipped). */
export function readTranscriptRecords(workspace: string): TranscriptRecord[] {
  return readJsonLines(join(workspace, TRANSCRIPT_DIR, TRANSCRIPT_INDEX), TranscriptRecord);
}
