// Writing a file into a guest through its agent, the same way on every substrate: the content
// travels as guest-exec stdin ("input-data"; on Proxmox `qm guest exec --pass-stdin 1`, so it is
// never part of any command line, event or journal), at most 1 MiB per call (the limit
// `qm guest exec --pass-stdin` enforces). Steps, each one guest exec:
//   1. prepare: parent directories (mode 0755 for new ones), a fresh private staging directory
//      PATH.kubedos-tmp (0700, root) beside the target — same file system, so step 3's mv is a rename;
//   2. per chunk: `cat > STAGING/part-NNNNNN` with the chunk on stdin;
//   3. finish: concatenate the parts, check sha256 (sha256sum), chown 0:0, chmod MODE, mv -f onto
//      PATH, remove the staging directory.
// So the file appears atomically, complete, with its final mode and owner; while it is being
// written it lies inside a directory only root can enter (a 0600 secret is never readable by
// anyone else, not even briefly). Only POSIX sh, mkdir, rm, cat, sha256sum, chown, chmod and mv
// are used: busybox and Debian both have them (busybox has no `install`).
import { createHash } from 'node:crypto';
import type { GuestExecResult, OpOptions } from './driver';
import { SubstrateError, throwIfAborted } from './driver';
import * as v from './validate';

/** Most bytes one guest exec carries on stdin (`qm guest exec --pass-stdin` refuses more than 1 MiB). */
export const GUEST_INPUT_MAX_BYTES = 1024 * 1024;
/** Largest file guestFileWrite accepts (64 calls of 1 MiB). */
export const GUEST_FILE_MAX_BYTES = 64 * 1024 * 1024;
/** Suffix of the staging directory beside the target. */
export const STAGING_SUFFIX = '.kubedos-tmp';

export type GuestFileWriteOptions = OpOptions & { mode?: number };

export type GuestExecFn = (argv: readonly string[], options: OpOptions & { timeoutS?: number; input?: Buffer }) => Promise<GuestExecResult>;

const PREPARE = [
  'set -eu',
  'umask 022',
  'if [ -d "$3" ] && [ ! -L "$3" ]; then echo "kubedos: $3 is a directory" >&2; exit 4; fi',
  'mkdir -p "$1"',
  'rm -rf "$2"',
  'mkdir -m 700 "$2"',
].join('; ');

const CHUNK = 'umask 077; cat > "$1"';

const FINISH = [
  'set -eu',
  'd=$1 t=$2 want=$3 mode=$4',
  'fail() { echo "kubedos: $1" >&2; cd /; rm -rf "$d"; exit "$2"; }',
  'cd "$d"',
  'set -- part-*',
  'if [ -e "$1" ]; then cat "$@" > data; else : > data; fi',
  'rm -f part-*',
  'got=$(sha256sum data)',
  'got=${got%% *}',
  '[ "$got" = "$want" ] || fail "sha256 of the written file is $got, expected $want" 3',
  'chown 0:0 data',
  'chmod "$mode" data',
  'if [ -d "$t" ] && [ ! -L "$t" ]; then fail "$t is a directory" 4; fi',
  'mv -f data "$t"',
  'cd /',
  'rm -rf "$d"',
].join('; ');

/** $0 of the scripts: names them in the guest's process list and error messages. */
const ARG0 = 'kubedos-file-write';

export interface GuestFileStep {
  what: 'prepare' | 'chunk' | 'finish';
  argv: string[];
  /** Byte range of the content sent on stdin (chunks only). */
  range?: { start: number; end: number };
}

export interface GuestFileWritePlan {
  path: string;
  parent: string;
  staging: string;
  /** Octal, four digits ("0600"). */
  mode: string;
  sizeBytes: number;
  sha256: string;
  steps: GuestFileStep[];
}

/** Validates and lays out the guest commands of one write (no side effects). */
export function planGuestFileWrite(path: string, sizeBytes: number, sha256: string, mode = 0o644, chunkBytes = GUEST_INPUT_MAX_BYTES): GuestFileWritePlan {
  const p = v.guestFilePath(path);
  const m = v.fileMode(mode).toString(8).padStart(4, '0');
  v.positiveInt('file size', sizeBytes, GUEST_FILE_MAX_BYTES);
  if (!/^[0-9a-f]{64}$/.test(sha256) && sha256 !== '<sha256>') throw new v.SubstrateInputError('sha256', sha256, '64 lowercase hex digits');
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > GUEST_INPUT_MAX_BYTES) throw new v.SubstrateInputError('chunk size', chunkBytes, `1 to ${GUEST_INPUT_MAX_BYTES} bytes`);
  const parent = p.slice(0, p.lastIndexOf('/')) || '/';
  const staging = `${p}${STAGING_SUFFIX}`;
  const steps: GuestFileStep[] = [{ what: 'prepare', argv: ['/bin/sh', '-c', PREPARE, ARG0, parent, staging, p] }];
  for (let start = 0, i = 0; start < sizeBytes; start += chunkBytes, i++) {
    steps.push({ what: 'chunk', argv: ['/bin/sh', '-c', CHUNK, ARG0, `${staging}/part-${String(i).padStart(6, '0')}`], range: { start, end: Math.min(sizeBytes, start + chunkBytes) } });
  }
  steps.push({ what: 'finish', argv: ['/bin/sh', '-c', FINISH, ARG0, staging, p, sha256, m] });
  return { path: p, parent, staging, mode: m, sizeBytes, sha256, steps };
}

export function contentBytes(data: Uint8Array | string): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new v.SubstrateInputError('file content', typeof data, 'a string or bytes');
}

/**
 * Writes `data` to `path` in the guest through `exec` (the driver's guestExec). Throws a
 * SubstrateError naming the step, the exit code and the guest's stderr; the staging directory
 * is removed again on failure (best effort).
 */
export async function writeGuestFile(exec: GuestExecFn, where: { vmid: number; target: string; node?: string }, path: string, data: Uint8Array | string, options: GuestFileWriteOptions = {}, chunkBytes = GUEST_INPUT_MAX_BYTES): Promise<void> {
  const bytes = contentBytes(data);
  if (bytes.length > GUEST_FILE_MAX_BYTES) throw new v.SubstrateInputError('file size', bytes.length, `at most ${GUEST_FILE_MAX_BYTES} bytes`);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const plan = planGuestFileWrite(path, bytes.length, sha256, options.mode ?? 0o644, chunkBytes);
  const op: OpOptions = { ...(options.signal ? { signal: options.signal } : {}), ...(options.onEvent ? { onEvent: options.onEvent } : {}) };
  throwIfAborted(op.signal);
  op.onEvent?.({ kind: 'log', ...(where.node ? { node: where.node } : {}), level: 'info', message: `VM ${where.vmid}: writing ${plan.path} (${bytes.length} bytes, mode ${plan.mode}, sha256 ${sha256.slice(0, 12)}…)` });
  let prepared = false;
  try {
    for (const step of plan.steps) {
      const input = step.range ? bytes.subarray(step.range.start, step.range.end) : undefined;
      const r = await exec(step.argv, { ...op, timeoutS: step.what === 'chunk' ? 300 : 120, ...(input ? { input } : {}) });
      if (r.exitCode !== 0) {
        const tail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-5).join('\n');
        throw new SubstrateError('guest-file-write', `could not write ${plan.path} into VM ${where.vmid} on ${where.target}: the ${step.what} step exited ${r.exitCode}: ${tail.split('\n').pop() ?? ''}`, {
          ...(where.node ? { node: where.node } : {}),
          stderrTail: tail,
          hint:
            r.exitCode === 3
              ? 'the content arrived changed: check the guest\'s disk and memory, then rerun'
              : r.exitCode === 4
                ? `${plan.path} is a directory in the guest: pick a file path`
                : 'is the file system read-only or full, or the parent a file? (the guest\'s stderr is above); rerun after fixing it',
        });
      }
      if (step.what === 'prepare') prepared = true;
    }
  } catch (err) {
    if (prepared) await exec(['/bin/rm', '-rf', plan.staging], { timeoutS: 30 }).catch(() => undefined);
    throw err;
  }
}
