// Talking to a node through its guest agent (seed 001's QGA channel): the deploy stages never
// need SSH or a route into the cluster's network. Every helper turns a failure into a StageError
// that names the node, the command and the tail of its stderr.
import type { Plan } from '../../common/plan/index';
import type { GuestExecResult, SubstrateDriver } from '../substrate/driver';
import type { StageContext } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';

export type PlanNode = Plan['nodes'][number];

export const tail = (text: string, lines = 20): string => text.trimEnd().split('\n').slice(-lines).join('\n');

export interface GuestCall {
  driver: SubstrateDriver;
  node: PlanNode;
  signal?: AbortSignal;
}

/** Runs argv in the node; exit codes outside okCodes become a StageError. */
export async function guestRun(g: GuestCall, argv: readonly string[], o: { timeoutS?: number; okCodes?: readonly number[]; hint?: string; what?: string } = {}): Promise<GuestExecResult> {
  let r: GuestExecResult;
  try {
    r = await g.driver.guestExec(g.node.vmid, argv, { timeoutS: o.timeoutS ?? 60, ...(g.signal ? { signal: g.signal } : {}) });
  } catch (err) {
    const e = err as Error & { hint?: string; stderrTail?: string };
    throw new StageError(`${g.node.name} (VMID ${g.node.vmid}): ${o.what ?? argv[0]} could not run through the guest agent: ${e.message}`, {
      node: g.node.name,
      command: [...argv],
      ...(e.stderrTail ? { stderrTail: e.stderrTail } : {}),
      hint: e.hint ?? 'is the VM running and qemu-guest-agent active in it? (kubedos status; the VM\'s serial console)',
    });
  }
  if (!(o.okCodes ?? [0]).includes(r.exitCode)) {
    throw new StageError(`${g.node.name}: ${o.what ?? argv.join(' ')} exited ${r.exitCode}`, {
      node: g.node.name,
      command: [...argv],
      exitCode: r.exitCode,
      stderrTail: tail(r.stderr || r.stdout),
      ...(o.hint ? { hint: o.hint } : {}),
    });
  }
  return r;
}

/** Runs argv and parses its stdout as JSON. */
export async function guestJson<T>(g: GuestCall, argv: readonly string[], o: { timeoutS?: number; what?: string; hint?: string } = {}): Promise<T> {
  const r = await guestRun(g, argv, o);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new StageError(`${g.node.name}: ${o.what ?? argv.join(' ')} did not print JSON`, { node: g.node.name, command: [...argv], stderrTail: tail(r.stdout + r.stderr) });
  }
}

/** Reads a file from the node, or undefined when it cannot be read (yet). */
export async function guestReadMaybe(g: GuestCall, path: string): Promise<Buffer | undefined> {
  try {
    return await g.driver.guestFileRead(g.node.vmid, path, g.signal ? { signal: g.signal } : {});
  } catch (err) {
    if (g.signal?.aborted) throw err;
    return undefined;
  }
}

export async function guestWrite(g: GuestCall, path: string, content: string | Uint8Array, mode: number): Promise<void> {
  try {
    await g.driver.guestFileWrite(g.node.vmid, path, content, { mode, ...(g.signal ? { signal: g.signal } : {}) });
  } catch (err) {
    const e = err as Error & { hint?: string; stderrTail?: string };
    throw new StageError(`${g.node.name}: writing ${path} through the guest agent failed: ${e.message}`, {
      node: g.node.name,
      ...(e.stderrTail ? { stderrTail: e.stderrTail } : {}),
      hint: e.hint ?? 'is the VM running and qemu-guest-agent active in it?',
    });
  }
}

/** Runs fn for every node at once; all settle before the first failure is thrown (nothing left running). */
export async function eachNode<T>(ctx: StageContext, nodes: readonly PlanNode[], fn: (n: PlanNode) => Promise<T>): Promise<T[]> {
  const settled = await Promise.allSettled(
    nodes.map(async (n) => {
      ctx.node(n.name, 'running');
      try {
        const v = await fn(n);
        ctx.node(n.name, 'ok');
        return v;
      } catch (err) {
        ctx.node(n.name, 'failed', (err as Error).message.split('\n')[0]);
        throw err;
      }
    }),
  );
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed.length) {
    if (failed.length > 1) for (const f of failed.slice(1)) ctx.log(`also failed: ${(f.reason as Error).message.split('\n')[0]}`, { stream: 'stderr' });
    throw failed[0]!.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}
