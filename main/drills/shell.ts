// How the drill engine runs commands on nodes: one interface, implemented by the namespace lab
// (main/drills/lab-target.ts) and, later, by a deployed cluster (over SSH from the hub). Every
// call ends in the one runner (main/exec/runner.ts). The engine wraps a shell to record each
// command into the phase that ran it.
import type { Plan } from '../../common/plan/schema';
import type { RunResult } from '../exec/runner';
import { CommandError } from '../exec/runner';
import type { SubstrateDriver } from '../substrate/driver';
import type { DrillCommand } from '../../common/drills/timeline';
import { MAX_PHASE_COMMANDS } from '../../common/drills/timeline';

export interface ShellOptions {
  input?: string | Uint8Array;
  timeoutMs?: number;
  /** Accept any exit code (the caller reads it). */
  anyExit?: boolean;
}

export interface NodeShell {
  /** Runs argv on a node (through the runner); throws a CommandError on a failing exit unless anyExit. */
  exec(node: string, argv: readonly string[], o?: ShellOptions): Promise<RunResult>;
}

/**
 * A shell that appends every command it runs (argv, exit code, timing) to the current phase:
 * the first MAX_PHASE_COMMANDS in full, the others counted.
 */
export function recordingShell(inner: NodeShell, sink: () => { commands: DrillCommand[]; commandsOmitted?: number } | undefined, now: () => number): NodeShell {
  return {
    async exec(node, argv, o) {
      const startedAtMs = now();
      const push = (exitCode: number | null) => {
        const phase = sink();
        if (!phase) return;
        if (phase.commands.length < MAX_PHASE_COMMANDS) phase.commands.push({ node, argv: [...argv], exitCode, startedAtMs, durationMs: now() - startedAtMs });
        else phase.commandsOmitted = (phase.commandsOmitted ?? 0) + 1;
      };
      try {
        const r = await inner.exec(node, argv, o);
        push(r.exitCode);
        return r;
      } catch (err) {
        push((err as { exitCode?: number | null }).exitCode ?? null);
        throw err;
      }
    },
  };
}

/** The last `lines` lines of a command's output on one line (' | ' between them), at most `chars` characters: the drills' bounded stderr tails. */
export const lastLines = (s: string, lines = 3, chars = 600): string => s.trim().split('\n').slice(-lines).join(' | ').slice(0, chars);

const tailOf = (s: string): string => lastLines(s, 8);

/**
 * A deployed cluster's nodes through their guest agents (the substrate driver), as the deploy
 * stages reach them: no SSH and no route into the cluster needed. Drills, heals and trust
 * operations on a deployed cluster use it.
 */
export function guestShell(plan: Plan, driver: SubstrateDriver): NodeShell {
  return {
    async exec(node, argv, so) {
      const n = plan.nodes.find((x) => x.name === node);
      if (!n) throw new Error(`there is no node "${node}" in ${plan.cluster.name}`);
      const t0 = Date.now();
      const timeoutS = Math.max(5, Math.ceil((so?.timeoutMs ?? 60_000) / 1000));
      let r;
      try {
        r = await driver.guestExec(n.vmid, argv, { timeoutS, ...(so?.input !== undefined ? { input: so.input } : {}) });
      } catch (err) {
        const e = err as Error & { stderrTail?: string; hint?: string };
        throw new CommandError({ message: `${node} (VMID ${n.vmid}): ${argv[0]} could not run through the guest agent: ${e.message.split('\n')[0]}`, command: [...argv], exitCode: null, stderrTail: e.stderrTail ?? '', reason: 'spawn', ...(e.hint ? { hint: e.hint } : {}) });
      }
      const res: RunResult = { command: [...argv], exitCode: r.exitCode, signal: null, stdout: r.stdout, stderr: r.stderr, durationMs: Date.now() - t0 };
      if (!so?.anyExit && r.exitCode !== 0) throw new CommandError({ message: `${node}: ${argv.join(' ')} exited ${r.exitCode}`, command: [...argv], exitCode: r.exitCode, stderrTail: tailOf(r.stderr || r.stdout), reason: 'exit' });
      return res;
    },
  };
}
