// Trust operations on a running cluster, run on the hub and the nodes through a NodeShell (the
// namespace lab implements it, main/trust/lab-target.ts; a deployed cluster implements it over its
// guest agent), with the real payload/backplane tools:
//   revoke NODE        kubedos-enroll-hub revoke: revoked.json on the hub + its peers gone from wg1..wg3
//   rotate --node N    new WireGuard keys on the node, a fresh single-use token, re-enrolled through
//                      a window (the hub replaces the old peers), a fresh handshake checked
//   rotate --hub       rotate-keys stage/apply on the hub, rotate-hub on every enrolled spoke, pings
//   window open|close  the hub's enrollment window, started detached and closed by its PID
// Each returns a TrustOpReport saying what changed and what was left as it was. The checks that need
// only the plan are in common/trust/operations.ts and run first.
import type { Plan } from '../../common/plan/index';
import { hubOf } from '../../common/plan/index';
import { PLANE_NAMES } from '../../common/spec/schema';
import type { TrustOperation, TrustOpReport } from '../../common/trust/operations';
import { refuseTrustOperation } from '../../common/trust/operations';
import { plural } from '../../common/text/plural';
import type { RunResult } from '../exec/runner';
import type { NodeShell } from '../drills/shell';
import { PATHS } from './enrollment-files';
import { issueEnrollmentToken } from './token';

export const BACKPLANE_DIR = '/usr/lib/kubedos/backplane';
const HUB_BIN = `${BACKPLANE_DIR}/kubedos-enroll-hub`;
const AGENT_BIN = `${BACKPLANE_DIR}/kubedos-enroll-agent`;
const PLANES_BIN = `${BACKPLANE_DIR}/kubedos-planes`;
const WINDOW_LOG = '/var/log/kubedos-enroll-window.log';
/** The systemd unit a deployed master runs the window in (the enroll stage uses the same name). */
const WINDOW_UNIT = 'kubedos-enroll-window';
/** How long a window opened only to re-enroll one node stays open at most. */
const REKEY_WINDOW_S = 120;

/** What the operations need from the cluster they act on. */
export interface TrustTarget {
  kind: 'lab' | 'cluster';
  plan: Plan;
  shell: NodeShell;
  /** The enrollment HMAC key the hub verifies tokens with (from the cluster's SecretStore, or the lab's). */
  hmacKey: Uint8Array;
}

export class TrustOperationError extends Error {
  constructor(
    message: string,
    readonly node?: string,
  ) {
    super(message);
    this.name = 'TrustOperationError';
  }
}

export interface HubStatus {
  enrolled: string[];
  revoked: string[];
  window: { listen: string; port: number; closesAt: number; pid?: number } | null;
}

export interface TrustOpOptions {
  now?: () => number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

const ip = (cidr: string): string => cidr.replace(/\/\d+$/, '');

function tail(s: string, lines = 3): string {
  return s.trim().split('\n').slice(-lines).join(' | ').slice(0, 600);
}

async function hubStatus(t: TrustTarget): Promise<HubStatus> {
  const r = await t.shell.exec(hubOf(t.plan).name, [HUB_BIN, 'status']);
  try {
    return JSON.parse(r.stdout) as HubStatus;
  } catch {
    throw new TrustOperationError(`kubedos-enroll-hub status on ${hubOf(t.plan).name} printed no JSON: ${tail(r.stdout || r.stderr)}`, hubOf(t.plan).name);
  }
}

/** `wg show all public-key` → {wg1: key, …}. */
async function publicKeys(t: TrustTarget, node: string): Promise<Record<string, string>> {
  const r = await t.shell.exec(node, ['wg', 'show', 'all', 'public-key']);
  const out: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const [dev, key] = line.trim().split(/\s+/);
    if (dev && key && (PLANE_NAMES as readonly string[]).includes(dev)) out[dev] = key;
  }
  return out;
}

/** The hub's peers on one plane: {public key: allowed IPs}. */
async function hubPeers(t: TrustTarget, plane: string): Promise<Record<string, string[]>> {
  const r = await t.shell.exec(hubOf(t.plan).name, ['wg', 'show', plane, 'allowed-ips']);
  const out: Record<string, string[]> = {};
  for (const line of r.stdout.split('\n')) {
    const [key, ...ips] = line.trim().split(/\s+/);
    if (key) out[key] = ips.filter((x) => x !== '(none)');
  }
  return out;
}

function planned(t: TrustTarget, node: string) {
  const n = t.plan.nodes.find((x) => x.name === node);
  if (!n) throw new TrustOperationError(`there is no node "${node}" in ${t.plan.cluster.name}`, node);
  return n;
}

async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) throw new Error('interrupted');
  await new Promise((res) => setTimeout(res, ms));
}

/** Runs one operation; refuses (TrustOperationError, nothing changed) what the plan or the hub rules out. */
export async function runTrustOperation(t: TrustTarget, o: TrustOperation, opts: TrustOpOptions = {}): Promise<TrustOpReport> {
  const refusal = refuseTrustOperation(t.plan, o);
  if (refusal) throw new TrustOperationError(refusal, 'node' in o ? o.node : undefined);
  const t0 = Date.now();
  const base = { cluster: t.plan.cluster.name, target: t.kind };
  let r: Omit<TrustOpReport, 'durationMs' | 'cluster' | 'target'>;
  switch (o.op) {
    case 'revoke':
      r = await revoke(t, o.node, o.reason ?? 'revoked by the operator', opts);
      break;
    case 'rotate-node':
      r = await rotateNode(t, o.node, opts);
      break;
    case 'rotate-hub':
      r = await rotateHub(t, opts);
      break;
    case 'window-open':
      r = await openWindow(t, (o.minutes ?? t.plan.enrollment.windowMinutes) * 60, opts);
      break;
    case 'window-close':
      r = await closeWindow(t, opts);
      break;
  }
  return { ...base, ...r, durationMs: Date.now() - t0 };
}

// ------------------------------------------------------------------ revoke

async function revoke(t: TrustTarget, node: string, reason: string, opts: TrustOpOptions) {
  const hub = hubOf(t.plan).name;
  const before = await hubStatus(t);
  const already = before.revoked.includes(node);
  const res = await t.shell.exec(hub, [HUB_BIN, 'revoke', node, '--reason', reason]);
  const removed = (JSON.parse(res.stdout) as { removed: string[] }).removed;
  opts.log?.(`${hub}: kubedos-enroll-hub revoke ${node}: removed ${removed.join(', ') || 'no peer'}`);
  // Nothing of the node may be left on any plane of the hub: not its keys, not its planned /32.
  const n = planned(t, node);
  const left: string[] = [];
  for (const p of PLANE_NAMES) {
    const peers = await hubPeers(t, p);
    if (Object.values(peers).some((ips) => ips.includes(n.planes[p].address))) left.push(p);
  }
  if (left.length) throw new TrustOperationError(`${node} is on the revocation list of ${hub}, but the hub still has a peer with its address on ${left.join(', ')}: run kubedos-enroll-hub enforce on ${hub}`, node);
  const changed: string[] = [];
  const unchanged: string[] = [];
  if (already) unchanged.push(`${node} was already on the hub's revocation list`);
  else changed.push(`${node} added to the hub's revocation list (${PATHS.revoked}): the enrollment window refuses it from now on`);
  if (removed.length) changed.push(`${plural(removed.length, 'peer')} of ${node} removed from the hub (${removed.join(', ')}): it is cut off every plane`);
  else unchanged.push(`the hub had no peer of ${node} left on ${PLANE_NAMES.join(', ')}`);
  unchanged.push(`the other nodes' peers and keys; ${node} itself was not contacted`);
  return { op: 'revoke' as const, node, changed, unchanged };
}

// ------------------------------------------------------------------ enrollment window

/**
 * Starts `kubedos-enroll-hub serve` on the hub, detached: as a transient systemd unit where the hub
 * runs systemd (a deployed master), else in its own session (the namespace lab); its output goes to
 * a log file on the hub. Waits until the hub says the window is open.
 */
async function startWindow(t: TrustTarget, seconds: number, opts: TrustOpOptions): Promise<NonNullable<HubStatus['window']>> {
  const hub = hubOf(t.plan).name;
  const script = [
    'if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then',
    `  systemctl stop ${WINDOW_UNIT} >/dev/null 2>&1; exec systemd-run --unit=${WINDOW_UNIT} --collect --quiet --property=Type=exec "$@"`,
    'fi',
    `umask 077; exec setsid -f "$@" >>${WINDOW_LOG} 2>&1 </dev/null`,
  ].join('\n');
  await t.shell.exec(hub, ['/bin/sh', '-c', script, 'sh', HUB_BIN, 'serve', '--window-seconds', String(seconds)], { timeoutMs: 30_000 });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const st = await hubStatus(t);
    if (st.window) return st.window;
    if (Date.now() > deadline) {
      const log = await t.shell.exec(hub, ['/bin/sh', '-c', `tail -n 5 ${WINDOW_LOG} 2>/dev/null || journalctl --no-pager -o cat -n 5 -u ${WINDOW_UNIT}`], { anyExit: true });
      throw new TrustOperationError(`${hub}: the enrollment window did not open within 20 s: ${tail(log.stdout) || 'no output'}`, hub);
    }
    await sleep(250, opts.signal);
  }
}

/** Ends the window by its PID (SIGTERM: the hub removes its marker and settles pending enrollments). */
async function stopWindow(t: TrustTarget, w: NonNullable<HubStatus['window']>, opts: TrustOpOptions): Promise<void> {
  const hub = hubOf(t.plan).name;
  if (w.pid === undefined) throw new TrustOperationError(`${hub}: the open window records no PID; stop it on the hub (systemctl stop ${WINDOW_UNIT})`, hub);
  await t.shell.exec(hub, ['kill', '-TERM', String(w.pid)], { anyExit: true });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!(await hubStatus(t)).window) return;
    if (Date.now() > deadline) throw new TrustOperationError(`${hub}: the enrollment window (pid ${w.pid}) is still open 30 s after SIGTERM`, hub);
    await sleep(250, opts.signal);
  }
}

const until = (w: NonNullable<HubStatus['window']>): string => `${w.listen}:${w.port} until ${new Date(w.closesAt * 1000).toISOString().slice(0, 19)}Z`;

async function openWindow(t: TrustTarget, seconds: number, opts: TrustOpOptions) {
  const st = await hubStatus(t);
  if (st.window) return { op: 'window-open' as const, changed: [], unchanged: [`the enrollment window was already open on ${until(st.window)}; it was not extended`] };
  const w = await startWindow(t, seconds, opts);
  return {
    op: 'window-open' as const,
    changed: [`enrollment window opened on ${until(w)} (${Math.round(seconds / 60)} min): nodes with a valid, unused token can enroll`],
    unchanged: ['tokens, revocations and every enrolled peer'],
  };
}

async function closeWindow(t: TrustTarget, opts: TrustOpOptions) {
  const st = await hubStatus(t);
  if (!st.window) return { op: 'window-close' as const, changed: [], unchanged: ['no enrollment window was open'] };
  await stopWindow(t, st.window, opts);
  return { op: 'window-close' as const, changed: [`enrollment window on ${st.window.listen}:${st.window.port} closed: enrollments are refused until it is opened again`], unchanged: ['every enrolled peer'] };
}

// ------------------------------------------------------------------ node keys

async function writeToken(t: TrustTarget, node: string, token: string): Promise<void> {
  // Through stdin, never argv; 0600.
  await t.shell.exec(node, ['/bin/sh', '-c', 'umask 077; mkdir -p "${1%/*}" && cat > "$1.tmp" && chmod 600 "$1.tmp" && mv "$1.tmp" "$1"', 'sh', PATHS.token], { input: `${token}\n` });
}

async function enrollAgent(t: TrustTarget, node: string): Promise<RunResult> {
  return t.shell.exec(node, [AGENT_BIN, 'enroll'], { anyExit: true, timeoutMs: 90_000 });
}

async function rotateNode(t: TrustTarget, node: string, opts: TrustOpOptions) {
  const now = opts.now ?? ((): number => Math.floor(Date.now() / 1000));
  const st = await hubStatus(t);
  if (st.revoked.includes(node)) throw new TrustOperationError(refuseTrustOperation(t.plan, { op: 'rotate-node', node }, st.revoked)!, node);
  if (!st.enrolled.includes(node)) throw new TrustOperationError(`${node} is not enrolled on the hub, so it has no keys to rotate; kubedos deploy enrolls it; nothing was changed`, node);
  const n = planned(t, node);
  const old = await publicKeys(t, node);
  const keyFiles = PLANE_NAMES.map((p) => `/etc/wireguard/${p}.key`);
  // New keys beside the old ones: the old files are kept as .old until the hub took the new keys.
  await t.shell.exec(node, ['/bin/sh', '-c', 'for f in "$@"; do mv -f "$f" "$f.old"; done', 'sh', ...keyFiles]);
  const restore = async (why: string): Promise<never> => {
    await t.shell.exec(node, ['/bin/sh', '-c', 'for f in "$@"; do [ -f "$f.old" ] && mv -f "$f.old" "$f"; done; true', 'sh', ...keyFiles], { anyExit: true });
    await t.shell.exec(node, [PLANES_BIN, 'up'], { anyExit: true });
    throw new TrustOperationError(`${node}: ${why}; its old keys were put back (kubedos-planes up)`, node);
  };
  let opened: NonNullable<HubStatus['window']> | undefined;
  try {
    await t.shell.exec(node, [PLANES_BIN, 'up']);
    const fresh = await publicKeys(t, node);
    if (PLANE_NAMES.some((p) => !fresh[p] || fresh[p] === old[p])) return await restore('kubedos-planes up did not make new keys on every plane');
    const token = issueEnrollmentToken(t.hmacKey, { cluster: t.plan.cluster.name, node, ttlSeconds: t.plan.enrollment.tokenTtlMinutes * 60, now: now() });
    await writeToken(t, node, token);
    if (!st.window) opened = await startWindow(t, REKEY_WINDOW_S, opts);
    const r = await enrollAgent(t, node);
    for (const line of `${r.stdout}\n${r.stderr}`.trim().split('\n').filter(Boolean)) opts.log?.(`${node}: ${line}`);
    if (r.exitCode !== 0) return await restore(`re-enrollment with the new keys failed (kubedos-enroll-agent exit ${r.exitCode}: ${tail(r.stderr || r.stdout)})`);
  } finally {
    if (opened) await stopWindow(t, opened, opts);
  }
  await t.shell.exec(node, ['/bin/sh', '-c', 'for f in "$@"; do rm -f "$f.old"; done', 'sh', ...keyFiles]);
  // The hub holds exactly the new key for the node's /32 on every plane.
  const fresh = await publicKeys(t, node);
  const wrong: string[] = [];
  for (const p of PLANE_NAMES) {
    const peers = await hubPeers(t, p);
    const holders = Object.entries(peers).filter(([, ips]) => ips.includes(n.planes[p].address)).map(([k]) => k);
    if (holders.length !== 1 || holders[0] !== fresh[p]) wrong.push(p);
  }
  if (wrong.length) throw new TrustOperationError(`${node} re-enrolled, but the hub's peer for its address on ${wrong.join(', ')} is not its new key`, node);
  return {
    op: 'rotate-node' as const,
    node,
    changed: [
      `new WireGuard keys on ${node} for ${PLANE_NAMES.join(', ')} (private keys made on the node, never sent)`,
      `${node} re-enrolled with a fresh single-use token${opened ? ' through a window opened for it and closed again' : ' through the window that was open'}; the hub replaced its old peers and a handshake with the new keys was seen`,
    ],
    unchanged: ['the hub\'s keys and every other node\'s peers', `${node}'s addresses on every plane`],
  };
}

// ------------------------------------------------------------------ hub keys

async function rotateHub(t: TrustTarget, opts: TrustOpOptions) {
  const hub = hubOf(t.plan);
  const st = await hubStatus(t);
  const spokes = t.plan.nodes.filter((n) => !n.hub && st.enrolled.includes(n.name) && !st.revoked.includes(n.name)).map((n) => n.name);
  const old = await publicKeys(t, hub.name);
  const staged = JSON.parse((await t.shell.exec(hub.name, [HUB_BIN, 'rotate-keys', 'stage'])).stdout) as { staged: Record<string, string> };
  // The hub switches first; every spoke swaps its hub peer a moment later and shakes hands at once.
  const at = Date.now() / 1000 + 2;
  const results = await Promise.allSettled([
    t.shell.exec(hub.name, [HUB_BIN, 'rotate-keys', 'apply', '--at', at.toFixed(3)], { timeoutMs: 30_000 }),
    ...spokes.map((s) => t.shell.exec(s, [AGENT_BIN, 'rotate-hub', '--keys', JSON.stringify(staged.staged), '--at', (at + 0.3).toFixed(3)], { timeoutMs: 30_000 })),
  ]);
  const failed = results.map((r, i) => ({ r, node: i === 0 ? hub.name : spokes[i - 1]! })).filter((x) => x.r.status === 'rejected');
  if (failed.length) {
    throw new TrustOperationError(
      `hub key rotation failed on ${failed.map((f) => f.node).join(', ')} (${tail(String((failed[0]!.r as PromiseRejectedResult).reason?.message ?? ''))}); nodes that did not take the new hub keys are cut off: run kubedos-enroll-agent rotate-hub --keys '${JSON.stringify(staged.staged)}' on them`,
      failed[0]!.node,
    );
  }
  const fresh = await publicKeys(t, hub.name);
  const moved = PLANE_NAMES.filter((p) => fresh[p] && fresh[p] !== old[p] && fresh[p] === staged.staged[p]);
  if (moved.length !== PLANE_NAMES.length) throw new TrustOperationError(`${hub.name}: the hub's keys did not change on ${PLANE_NAMES.filter((p) => !moved.includes(p)).join(', ')}`, hub.name);
  // A fresh handshake with the new hub key from every spoke on every plane.
  const silent: string[] = [];
  await Promise.all(
    spokes.map(async (s) => {
      for (const p of PLANE_NAMES) {
        const r = await t.shell.exec(s, ['ping', '-c', '2', '-W', '3', '-I', p, ip(hub.planes[p].address)], { anyExit: true, timeoutMs: 20_000 });
        if (r.exitCode !== 0) silent.push(`${s}/${p}`);
      }
    }),
  );
  if (silent.length) throw new TrustOperationError(`the hub's keys were rotated, but ${silent.join(', ')} cannot reach the hub with them`, silent[0]!.split('/')[0]);
  opts.log?.(`${hub.name}: new keys on ${PLANE_NAMES.join(', ')}; ${spokes.length} spokes reach it`);
  return {
    op: 'rotate-hub' as const,
    node: hub.name,
    changed: [`new WireGuard keys on ${hub.name} for ${PLANE_NAMES.join(', ')}`, `${plural(spokes.length, 'node')} switched to them (${spokes.join(', ') || 'none'}) and reached the hub on every plane`],
    unchanged: [
      'every node\'s own keys and addresses',
      ...(st.revoked.length ? [`revoked nodes (${st.revoked.join(', ')}) were not told the new keys`] : []),
      'the hub\'s enrollment certificate and pin',
    ],
  };
}
