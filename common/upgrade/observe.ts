// Reading a node after the reboot into a tried slot (issue 18; docs/upgrades.md): from what the
// node's own scripts print — `kubedos-boot status` (key=value lines) and the health gate's
// kubedos.prom (node-exporter's textfile collector) — one verdict. Pure; the outputs of the real
// scripts run through the GRUB simulator are its tests' fixtures (main/upgrade/observe.test.ts).
import { z } from 'zod';
import type { AgentEvent, AgentState } from './agent';
import { Slot } from './agent';
const maybeSlot = z.union([Slot, z.literal('')]);

/** `kubedos-boot status`. */
export const BootStatus = z
  .object({
    /** kubedos.slot= on the kernel command line ('' when the node was not booted by grub-ab.cfg). */
    booted: maybeSlot,
    active: Slot,
    try: maybeSlot,
    tries: z.string().regex(/^[0-3]?$/),
    failed: maybeSlot,
  })
  .strict();
export type BootStatus = z.infer<typeof BootStatus>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const tail = (text: string): string => text.trim().split('\n').slice(-5).join(' | ').slice(0, 300);

export function parseBootStatus(text: string): Parsed<BootStatus> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z]+)=(.*)$/.exec(line.trim());
    if (m) fields[m[1]!] = m[2]!;
  }
  const r = BootStatus.safeParse(fields);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0]!;
  const key = issue.path.join('.');
  const why = key && fields[key] === undefined ? 'missing' : `${JSON.stringify(fields[key] ?? '')}: ${issue.message}`;
  return { ok: false, message: `kubedos-boot status is unreadable (${key || 'output'} ${why}): got "${tail(text)}"` };
}

/** What the gate wrote into kubedos.prom at its last pass. */
export interface GateMetrics {
  booted?: Slot;
  active?: Slot;
  failed?: Slot;
  triesLeft?: number;
  success?: boolean;
  /** check → passed, only the checks that ran (a check not run has no sample). */
  checks: Record<string, boolean>;
  /** Units of gate-units systemd gave up on (failed), sorted: the gate did not wait for them. */
  unitsFailed: string[];
}

/** The kubedos_* samples of the gate's textfile (Prometheus text format); other lines are ignored. */
export function parseGateMetrics(text: string): GateMetrics {
  const out: GateMetrics = { checks: {}, unitsFailed: [] };
  for (const line of text.split('\n')) {
    const m = /^(kubedos_\w+)(?:\{(\w+)="([^"]*)"\})? (\S+)$/.exec(line.trim());
    if (!m) continue;
    const [, name, , label, value] = m;
    const slot = Slot.safeParse(label);
    const on = value === '1';
    if (name === 'kubedos_boot_slot' && on && slot.success) out.booted = slot.data;
    else if (name === 'kubedos_boot_active_slot' && on && slot.success) out.active = slot.data;
    else if (name === 'kubedos_boot_failed_slot' && on && slot.success) out.failed = slot.data;
    else if (name === 'kubedos_boot_tries_left' && /^\d+$/.test(value!)) out.triesLeft = Number(value);
    else if (name === 'kubedos_boot_success') out.success = on;
    else if (name === 'kubedos_health_gate_check' && label) out.checks[label] = on;
    else if (name === 'kubedos_health_gate_unit_failed' && label && on) out.unitsFailed.push(label);
  }
  out.unitsFailed.sort();
  return out;
}

export type BootVerdict =
  /** Booted the tried slot and it is the active slot: its gate passed (mark-good). */
  | { verdict: 'committed'; slot: Slot }
  /** Booted the tried slot, not yet active: the gate has not passed yet (or failed and is about to reboot). */
  | { verdict: 'pending'; slot: Slot; triesLeft: number; gateFailing?: string }
  /** The try is set but the node has not booted it yet (no reboot since the write). */
  | { verdict: 'staged'; slot: Slot; fallback: Slot }
  /** Booted the old slot and the tried slot is recorded as failed (tries ran out or the gate marked it bad). */
  | { verdict: 'rolled-back'; slot: Slot; fellBackTo: Slot; check?: string; reason: string }
  /** Booted the old slot with no failure recorded: the try was lost (never written into the environment block, or withdrawn). */
  | { verdict: 'not-tried'; slot: Slot; bootedSlot: Slot; reason: string }
  | { verdict: 'unreadable'; message: string };

// A unit systemd gave up on is what made the gate give up: its check names the failure.
const firstFailing = (m: GateMetrics): string | undefined => (m.unitsFailed.length ? 'services' : Object.keys(m.checks).sort().find((c) => m.checks[c] === false));
const failingWhy = (m: GateMetrics, check: string): string => (check === 'services' && m.unitsFailed.length ? `services: ${m.unitsFailed.join(', ')} failed, systemd gave up` : check);

/**
 * One verdict for a node the foundry asked to try `tried`. `metrics`: the gate's textfile as last
 * seen while the tried slot was booted (the gate on the fallback slot rewrites the file; its checks
 * are about the old slot and are never blamed on the tried one).
 */
export function observeBoot(o: { tried: Slot; status: string; metrics?: string }): BootVerdict {
  const p = parseBootStatus(o.status);
  if (!p.ok) return { verdict: 'unreadable', message: p.message };
  const s = p.value;
  if (s.booted === '') return { verdict: 'unreadable', message: 'kubedos-boot status names no booted slot (no kubedos.slot= on the kernel command line): this node was not booted by the A/B GRUB configuration' };
  const m = o.metrics === undefined ? undefined : parseGateMetrics(o.metrics);
  const aboutTried = m && m.booted === o.tried ? m : undefined;
  if (s.booted === o.tried) {
    if (s.active === o.tried) return { verdict: 'committed', slot: o.tried };
    const failing = aboutTried && aboutTried.success === false ? firstFailing(aboutTried) : undefined;
    return { verdict: 'pending', slot: o.tried, triesLeft: Number(s.tries || '0'), ...(failing ? { gateFailing: failing } : {}) };
  }
  if (s.try === o.tried && s.tries !== '' && s.tries !== '0') return { verdict: 'staged', slot: o.tried, fallback: s.active };
  if (s.failed === o.tried) {
    const failed = aboutTried && aboutTried.success === false ? aboutTried : undefined;
    const check = failed ? firstFailing(failed) : undefined;
    return failed && check
      ? { verdict: 'rolled-back', slot: o.tried, fellBackTo: s.booted, check, reason: `slot ${o.tried} failed its health gate (${failingWhy(failed, check)}); the node fell back to slot ${s.booted}` }
      : { verdict: 'rolled-back', slot: o.tried, fellBackTo: s.booted, reason: `slot ${o.tried} ran out of boot tries without passing its health gate (it never came up, or its gate never ran); the node fell back to slot ${s.booted}` };
  }
  return { verdict: 'not-tried', slot: o.tried, bootedSlot: s.booted, reason: `the node booted slot ${s.booted} with no try of slot ${o.tried} pending and no failure recorded: the try was lost (the slot write did not finish, or was withdrawn); write slot ${o.tried} again` };
}

/**
 * The gate of a node's active slot, run once more by the foundry (a replaced node: its fresh disk
 * boots slot A of the new build, no try): passed when `kubedos-boot status` names a booted slot that
 * is its active one and the gate's textfile, about that slot, says success. `ran: false`: there was
 * nothing to judge by (status unreadable, no textfile, a textfile about another slot); else the
 * failing check, named as observeBoot names it.
 */
export function activeGate(status: string, metrics: string | undefined): { passed: true; slot: Slot } | { passed: false; ran: boolean; why: string } {
  const p = parseBootStatus(status);
  if (!p.ok) return { passed: false, ran: false, why: p.message };
  const s = p.value;
  if (s.booted === '' || s.booted !== s.active) return { passed: false, ran: false, why: `the node boots slot ${s.booted || '(none)'}, its active slot is ${s.active}: not a settled first boot` };
  if (metrics === undefined) return { passed: false, ran: false, why: 'the gate wrote no kubedos.prom' };
  const m = parseGateMetrics(metrics);
  if (m.booted !== s.booted) return { passed: false, ran: false, why: `the gate's kubedos.prom is about slot ${m.booted ?? '(none)'}, the node booted ${s.booted}` };
  if (m.success === true) return { passed: true, slot: s.booted };
  const check = firstFailing(m);
  return { passed: false, ran: true, why: check ? failingWhy(m, check) : 'the gate did not pass (no failing check named)' };
}

/** The agent's `booted` event from `kubedos-boot status` after a boot (undefined: no booted slot). */
export function bootedEvent(s: BootStatus): Extract<AgentEvent, { type: 'booted' }> | undefined {
  if (s.booted === '') return undefined;
  return s.failed ? { type: 'booted', booted: s.booted, failed: s.failed } : { type: 'booted', booted: s.booted };
}

/**
 * The agent's `gate` event from kubedos-health-gate's output: its last line is "gate: pass (…)" or
 * "gate: fail (CHECK: why) …". Undefined when there is no such line (the gate did not finish).
 */
export function gateEvent(output: string): Extract<AgentEvent, { type: 'gate' }> | undefined {
  const last = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^gate: (pass|fail)\b/.test(l))
    .pop();
  if (!last) return undefined;
  if (last.startsWith('gate: pass')) return { type: 'gate', pass: true };
  const m = /^gate: fail \((.*)\)(?: after \d+ s on slot [AB]| on the active slot [AB]: .*)$/.exec(last);
  return { type: 'gate', pass: false, check: m ? m[1]! : last.slice('gate: fail'.length).trim() };
}

/**
 * Whether one run of kubedos-health-gate (its exit status and output) failed for good: asking it
 * again cannot pass. Only what the run itself makes certain:
 *  - `ran: false`: the gate did not run: not found (exit 127) or not executable (126), or it does not
 *    know an option it was given (exit 2, "kubedos-health-gate: unknown option …": an older gate);
 *  - `ran: true`: its last line names a failure the gate reports as final: a unit of gate-units
 *    systemd gave up on ("services: UNIT failed (systemd gave up)": nothing restarts it by itself),
 *    or a failure it stopped on without waiting (": not waiting", a definite check on a tried slot).
 * Undefined: it passed, or may still pass by waiting (a unit starting, a stale hub handshake,
 * node-ready, a gate that did not finish).
 */
export function gateFailedForGood(r: { exitCode: number; stdout: string; stderr: string }): { ran: false; why: string } | { ran: true; check: string } | undefined {
  if (r.exitCode === 126 || r.exitCode === 127) return { ran: false, why: `it could not be run (exit ${r.exitCode}: ${r.exitCode === 127 ? 'not found' : 'not executable'}${r.stderr.trim() ? `; ${tail(r.stderr)}` : ''})` };
  const unknown = /^kubedos-health-gate: unknown option .*$/m.exec(r.stderr);
  if (r.exitCode === 2 && unknown) return { ran: false, why: `it refused its arguments ("${unknown[0]}": an older gate)` };
  const ev = gateEvent(r.stdout);
  if (r.exitCode === 0 || !ev || ev.pass || !ev.check) return undefined;
  if (/: not waiting$/.test(ev.check) || /^services: .* failed \(systemd gave up\)$/.test(ev.check)) return { ran: true, check: ev.check };
  return undefined;
}

/**
 * The agent's events for what the foundry sees of a node it asked to try `state.slot` (the
 * verdict of observeBoot), given the state the agent is in: none while nothing changed. A tried
 * boot the foundry did not see (a gate that failed at once, a kernel that never came up) is
 * walked through in order: booted the tried slot (when its gate's metrics say it ran), the gate's
 * failure, then the fallback boot.
 */
export function agentEventsAfterBoot(state: AgentState, v: BootVerdict): AgentEvent[] {
  if ((state.state !== 'staged' && state.state !== 'verifying') || !state.slot || v.verdict === 'unreadable' || v.verdict === 'staged' || v.slot !== state.slot) return [];
  const booted: AgentEvent[] = state.state === 'staged' ? [{ type: 'booted', booted: state.slot }] : [];
  switch (v.verdict) {
    case 'committed':
      return [...booted, { type: 'gate', pass: true }];
    case 'pending':
      return v.gateFailing && v.gateFailing !== state.gateFailure ? [...booted, { type: 'gate', pass: false, check: v.gateFailing }] : booted;
    case 'rolled-back': {
      const gate: AgentEvent[] = v.check && v.check !== state.gateFailure ? [...booted, { type: 'gate', pass: false, check: v.check }] : [];
      return [...gate, { type: 'booted', booted: v.fellBackTo, failed: v.slot }];
    }
    case 'not-tried':
      return [{ type: 'booted', booted: v.bootedSlot }];
  }
}
