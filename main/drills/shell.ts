// How the drill engine runs commands on nodes: one interface, implemented by the namespace lab
// (main/drills/lab-target.ts) and, later, by a deployed cluster (over SSH from the hub). Every
// call ends in the one runner (main/exec/runner.ts). The engine wraps a shell to record each
// command into the phase that ran it.
import type { RunResult } from '../exec/runner';
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
