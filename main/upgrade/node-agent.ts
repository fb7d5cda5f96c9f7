// The node's update agent, run by the foundry (docs/upgrades.md, "The node's update agent"): the
// pure state machine of common/upgrade/agent.ts, fed per node with the events the apply run and the
// rollback observe, its state file and journal kept ON THE NODE, on the data partition both slots
// see (/var/lib/kubedos/upgrade/state.json, journal.jsonl beside it). So what rolled back on a node
// is known from the node itself: a workspace lost, or restored from an older bundle, or a second
// operator's foundry, finds it before any node is touched.
//
// The node side is POSIX sh (nodes have no Node.js): AGENT_READ_SCRIPT prints the journal's line
// count and the state file; AGENT_WRITE_SCRIPT appends the new journal lines, then writes the
// state into a temporary file in the same directory, fsyncs it, renames it over state.json (root,
// 0644) and fsyncs the directory. VmNodeOps runs them through the guest agent; the simulated nodes
// of the tests run the same scripts on a directory of their own.
import { posix } from 'node:path';
import type { AgentEvent, AgentState as AgentStateT, BuildRef, Slot } from '../../common/upgrade/agent';
import { AGENT_JOURNAL_FILE, AGENT_STATE_FILE, AgentState, initialAgentState, journalLine, next, renderAgentState } from '../../common/upgrade/agent';
import { plural } from '../../common/text/plural';
import { firstFew } from '../../common/text/first-few';
import { errText } from '../../common/text/error-text';

/** The directory of the state file and journal on the node (on the data partition). */
export const AGENT_DIR = posix.dirname(AGENT_STATE_FILE);

/** What NodeOps.readAgentState returns: the state file's text (undefined: no file) and the journal's line count. */
export interface AgentFiles {
  state?: string;
  journalLines: number;
}

/** `sh -c AGENT_READ_SCRIPT arg0 DIR`: line 1 the journal's line count, line 2 `state` or `none`, then the state file. */
export const AGENT_READ_SCRIPT = [
  'set -eu',
  'd=$1',
  'n=0',
  'if [ -f "$d/journal.jsonl" ]; then n=$(wc -l < "$d/journal.jsonl"); fi',
  'echo "$n"',
  'if [ -f "$d/state.json" ]; then echo state; cat "$d/state.json"; else echo none; fi',
].join('\n');

/**
 * `sh -c AGENT_WRITE_SCRIPT arg0 DIR K` with the K journal lines, then the state file's text on
 * stdin (the shell's `read` takes one line at a time without reading ahead; cat takes the rest).
 */
export const AGENT_WRITE_SCRIPT = [
  'set -eu',
  'umask 022',
  'd=$1 k=$2',
  'mkdir -p "$d"',
  'j=$d/journal.jsonl t=$d/.state.json.tmp',
  'i=0',
  'while [ "$i" -lt "$k" ]; do IFS= read -r line; printf \'%s\\n\' "$line" >> "$j"; i=$((i + 1)); done',
  'cat > "$t"',
  'chmod 0644 "$t"',
  'if [ "$(id -u)" = 0 ]; then chown 0:0 "$t"; fi',
  'if [ -f "$j" ]; then sync "$j" "$t"; else sync "$t"; fi',
  'mv -f "$t" "$d/state.json"',
  'sync "$d"',
].join('\n');

const ARG0 = 'kubedos-agent-state';

export const agentReadArgv = (dir = AGENT_DIR): string[] => ['/bin/sh', '-c', AGENT_READ_SCRIPT, ARG0, dir];
export const agentWriteArgv = (dir: string, journalLines: number): string[] => ['/bin/sh', '-c', AGENT_WRITE_SCRIPT, ARG0, dir, String(journalLines)];
export const agentWriteInput = (state: string, journal: readonly string[]): string => `${journal.map((l) => `${l}\n`).join('')}${state}`;

/** Parses AGENT_READ_SCRIPT's output. */
export function parseAgentRead(out: string): AgentFiles {
  const m = /^\s*(\d+)\n(state|none)\n/.exec(out);
  if (!m) throw new Error(`unexpected output reading ${AGENT_STATE_FILE}: "${out.slice(0, 200)}"`);
  const journalLines = Number(m[1]);
  return m[2] === 'state' ? { state: out.slice(m[0].length), journalLines } : { journalLines };
}

/** What the apply run and the rollback need of a node for its agent state (NodeOps' two methods). */
export interface AgentStateOps {
  readAgentState(node: string, signal?: AbortSignal): Promise<AgentFiles>;
  writeAgentState(node: string, state: string, journal: readonly string[], signal?: AbortSignal): Promise<void>;
}


/** The state file's text parsed, or why it is not a state the agent can go on from (with what to do). */
export function parseAgentState(node: string, text: string): { ok: true; state: AgentStateT } | { ok: false; message: string } {
  const fix = `it records which builds rolled back on ${node}: repair it from its journal (${AGENT_JOURNAL_FILE}, one JSON line per transition) with kubedos ssh, or remove it only if no build ever rolled back on ${node} (the run then starts it from the build the node runs); nothing was touched`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `${node}: ${AGENT_STATE_FILE} is not JSON (${errText(err)}): ${fix}` };
  }
  const r = AgentState.safeParse(json);
  if (r.success) return { ok: true, state: r.data };
  const issue = r.error.issues[0]!;
  return { ok: false, message: `${node}: ${AGENT_STATE_FILE} is not an update agent state (${issue.path.join('.') || 'the file'}: ${issue.message}): ${fix}` };
}

/** Where a node's agent is: its state (undefined: no file yet) and the journal's next sequence number. */
interface NodeAgent {
  state?: AgentStateT;
  seq: number;
}

export type AgentReadResult = { ok: true; agents: NodeAgents } | { ok: false; message: string };

/**
 * The agents of a run's nodes. `read` loads every node's state before any node is touched (an
 * unreadable or invalid file refuses the run); `feed` runs `next` and writes the step (the new
 * state and its journal line, a refusal journaled too) to the node at once.
 */
export class NodeAgents {
  private constructor(
    private readonly ops: AgentStateOps,
    private readonly agents: Record<string, NodeAgent>,
    private readonly now: () => number,
  ) {}

  static async read(ops: AgentStateOps, nodes: readonly string[], now: () => number, signal?: AbortSignal): Promise<AgentReadResult> {
    const agents: Record<string, NodeAgent> = {};
    for (const node of nodes) {
      let files: AgentFiles;
      try {
        files = await ops.readAgentState(node, signal);
      } catch (err) {
        return { ok: false, message: `cannot read the update agent state of ${node} (${AGENT_STATE_FILE}): ${errText(err)}; check that the node runs (kubedos status SPEC) and rerun; nothing was touched` };
      }
      if (files.state === undefined) {
        agents[node] = { seq: files.journalLines };
        continue;
      }
      const p = parseAgentState(node, files.state);
      if (!p.ok) return { ok: false, message: p.message };
      agents[node] = { state: p.state, seq: files.journalLines };
    }
    return { ok: true, agents: new NodeAgents(ops, agents, now) };
  }

  /** The nodes whose state lists `target` as bad, in `nodes` order, with what each recorded. */
  badOn(target: BuildRef, nodes: readonly string[]): { node: string; slot: Slot; reason: string }[] {
    return nodes.flatMap((node) => {
      const b = this.agents[node]?.state?.bad.find((x) => x.digest === target.digest);
      return b ? [{ node, slot: b.slot, reason: b.reason }] : [];
    });
  }

  state(node: string): AgentStateT | undefined {
    return this.agents[node]?.state;
  }

  /**
   * The node was replaced by a new VM: its state and journal went with the old disk; the new one has
   * none yet (its journal begins again). Returns the old disk's state as this run read it (its bad
   * list goes on in the new disk's first state, the `replaced` event's), undefined when none was read.
   */
  replaced(node: string): AgentStateT | undefined {
    const old = this.agents[node]?.state;
    this.agents[node] = { seq: 0 };
    return old;
  }

  /**
   * Feeds `event` to the node's agent (a node without a state file starts from `initial`) and
   * writes the result to the node. Returns the refusal's message when `next` refused (journaled).
   * Throws when the node could not be written (the caller says where).
   */
  async feed(node: string, event: AgentEvent, initial: () => AgentStateT, signal?: AbortSignal): Promise<{ refused?: string }> {
    const a = (this.agents[node] ??= { seq: 0 });
    const from = a.state ?? initial();
    const step = next(from, event);
    const line = JSON.stringify(journalLine(a.seq, new Date(this.now()).toISOString(), from, event, step));
    const to = step.ok ? step.state : from;
    await this.ops.writeAgentState(node, renderAgentState(to), [line], signal);
    a.state = to;
    a.seq++;
    return step.ok ? {} : { refused: step.message };
  }

  /** Feeds events in order; stops at the first refusal. */
  async feedAll(node: string, events: readonly AgentEvent[], initial: () => AgentStateT, signal?: AbortSignal): Promise<{ refused?: string }> {
    for (const e of events) {
      const r = await this.feed(node, e, initial, signal);
      if (r.refused) return r;
    }
    return {};
  }
}

/** A node's first state when it has no file: the build on its active slot, nothing staged. */
export const firstState = (running: BuildRef, active: Slot) => (): AgentStateT => initialAgentState(running, active);

/** The refusal of a build that some node's agent recorded as bad (before any node is touched). */
export function badOnNodesMessage(target: BuildRef, bad: readonly { node: string; slot: Slot; reason: string }[]): string {
  const first = bad[0]!;
  const where = bad.length === 1 ? first.node : `${plural(bad.length, 'node')} (${firstFew(bad.map((b) => b.node))})`;
  return `build ${target.version} rolled back on ${where} (${bad.length > 1 ? `${first.node}: ` : ''}slot ${first.slot}: ${first.reason}), as the update agent's state on the node records it (${AGENT_STATE_FILE}): it is not applied again; build a fixed N+1 (a new digest) and rerun. Nothing was touched`;
}
