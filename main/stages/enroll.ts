// Stage "enroll": the master's enrollment window (payload/backplane) admits every node onto the
// three planes. The workbench writes the trust material through the guest agent — the hub's
// roster, HMAC key and TLS certificate on the master; the hub pin, the CA chain and a
// single-use, node-bound token on each joining node — opens the window (a transient systemd
// unit on the master), runs each node's agent, watches the hub's roster fill, closes the window
// and then checks a fresh handshake on wg1, wg2 and wg3 from every node to the hub.
// Safe to rerun: nodes already enrolled with live handshakes are left alone (0 changes).
import { hubOf } from '../../common/plan/index';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { agentEnrollmentFiles, hubEnrollmentFiles, issueEnrollmentToken } from '../trust/index';
import type { NodeFile } from '../trust/index';
import { sha256Hex } from '../../common/canonical';
import type { Plan } from '../../common/plan/index';
import type { SubstrateDriver } from '../substrate/driver';
import type { DeployContext } from './context';
import { deployStage, EnrollOutput, scopedNodes } from './context';
import type { GuestCall, PlanNode } from './guest';
import { eachNode, guestJson, guestReadMaybe, guestRun, guestWrite, tail } from './guest';
import { sleep } from '../pipeline/sleep';
import { planesStatus } from './firstboot';
import { HANDSHAKE_FRESH_S, PLANE_NAMES, staleHandshakes } from './backplanes';
import { clusterTrust, TRUST_FILES } from './trust';
import { ensureNodeIdentities, identitiesDue, identityFiles } from './node-identities';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORKSPACE_LAYOUT } from '../workspace';
import { recordWireguardKeys } from '../trust/inventory';

const HUB_BIN = '/usr/lib/kubedos/backplane/kubedos-enroll-hub';
const AGENT_BIN = '/usr/lib/kubedos/backplane/kubedos-enroll-agent';
export const WINDOW_UNIT = 'kubedos-enroll-window';

interface HubStatus {
  enrolled: string[];
  revoked: string[];
  window: { listen: string; port: number; closesAt: number } | null;
}

/** Writes files whose content differs; returns how many were written. */
async function syncFiles(g: GuestCall, files: readonly NodeFile[], keepIfPresent: readonly string[] = []): Promise<number> {
  let written = 0;
  for (const f of files) {
    const want = typeof f.content === 'string' ? Buffer.from(f.content) : Buffer.from(f.content);
    const have = await guestReadMaybe(g, f.path);
    if (have && (have.equals(want) || keepIfPresent.includes(f.path))) continue;
    await guestWrite(g, f.path, want, f.mode);
    written++;
  }
  return written;
}

/** Exit codes of kubedos-enroll-agent (payload/backplane/README.md). */
const AGENT_EXIT: Record<number, string> = {
  2: 'the hub refused the node (see its reason above); a new token or an operator decision is needed',
  3: 'the hub\'s certificate does not match the pinned fingerprint: the token was NOT sent; is this the cluster\'s master?',
  4: 'the hub was unreachable or its window closed',
  5: 'no handshake with the hub afterwards: check UDP reachability of the plane ports on the LAN',
};

/** Pure: what keeps the hub's view from being "every spoke enrolled, linked and fresh" ([] = converged). */
export function enrollDrift(plan: Plan, hub: HubStatus, hubPlanes: Awaited<ReturnType<typeof planesStatus>>, nowS: number): string[] {
  const spokes = plan.nodes.filter((n) => !n.hub).map((n) => n.name);
  const out: string[] = [];
  const missing = spokes.filter((n) => !hub.enrolled.includes(n));
  if (missing.length) out.push(`not enrolled on the hub: ${missing.join(', ')}`);
  if (hub.window) out.push('the enrollment window is open');
  for (const p of PLANE_NAMES) {
    const peers = hubPlanes.planes[p]?.peers ?? [];
    if (peers.length !== spokes.length) out.push(`${p} has ${peers.length} peers, the plan ${spokes.length}`);
    else if (peers.some((x) => !(x.latestHandshake > 0 && nowS - x.latestHandshake < HANDSHAKE_FRESH_S))) out.push(`${p}: a peer has no handshake in the last ${HANDSHAKE_FRESH_S} s`);
  }
  return out;
}

/**
 * The nodes revoked at the hub (`kubedos-enroll-hub status`), sorted: fenced by a drill or by a
 * replace-based upgrade (or its --rollback) that has not destroyed them yet. Out of the planes on purpose.
 */
export async function hubRevoked(driver: SubstrateDriver, plan: Plan, signal?: AbortSignal): Promise<string[]> {
  return [...(await hubStatusOf({ driver, node: hubOf(plan), ...(signal ? { signal } : {}) })).revoked].sort();
}

/** The hub's roster, revocations and window (`kubedos-enroll-hub status`). */
function hubStatusOf(g: GuestCall): Promise<HubStatus> {
  return guestJson<HubStatus>(g, [HUB_BIN, 'status'], { what: 'kubedos-enroll-hub status' });
}

async function hubView(driver: SubstrateDriver, plan: Plan, signal: AbortSignal): Promise<string[]> {
  const g: GuestCall = { driver, node: hubOf(plan), signal };
  const st = await hubStatusOf(g);
  return enrollDrift(plan, st, await planesStatus(g), Math.floor(Date.now() / 1000));
}


export function enrollStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'enroll',
    description: 'Open the enrollment window on the master, enroll every node onto wg1/wg2/wg3, close it; check fresh handshakes',
    needs: ['backplanes'],
    reads: ['validate', 'plan', 'backplanes'],
    rerun: 'safe-rerun',
    // The hub pin comes from the cluster's trust material, made here when it does not exist yet
    // (idempotent, as the stage would): an input read before its first creation would differ on
    // the next run and enroll once more for nothing.
    inputs: async ({ plan, backplanes }) => ({ plan: sha256Hex(plan.json), keys: backplanes.wgPublicKeys, hubPin: (await clusterTrust(ctx.workspace, plan.plan, ctx.env)).hubTls.fingerprint }),
    output: EnrollOutput,
    // On the hub: every spoke on the roster, no window open, a fresh peer per spoke on each plane.
    async probe(p, { validate, plan }) {
      // Node identity certificates: read from the workspace only (no node contacted for them).
      const trustDir = join(ctx.workspace, WORKSPACE_LAYOUT.trust);
      const caPath = join(trustDir, TRUST_FILES.intermediate);
      const due = identitiesDue(trustDir, plan.plan, existsSync(caPath) ? readFileSync(caPath, 'utf8') : undefined, validate.spec.spec.security.keyRotation.kubeCertDays, new Date());
      if (due.length) return { moved: true, reason: `node identity certificates to issue or rotate: ${due.slice(0, 4).join(', ')}${due.length > 4 ? ` and ${due.length - 4} more` : ''}` };
      const drift = await hubView(ctx.substrate(validate.spec, plan.plan).driver, plan.plan, p.signal);
      return drift.length ? { moved: true, reason: drift.slice(0, 3).join('; ') } : { moved: false, note: 'every node is enrolled with fresh handshakes on the hub' };
    },
    async run(s, { validate, plan: planned, backplanes }) {
      const plan = planned.plan;
      const { driver } = ctx.substrate(validate.spec, plan);
      const trust = await clusterTrust(ctx.workspace, plan, ctx.env);
      for (const n of trust.notes) s.log(n);
      if (trust.created.length) s.log(`trust material created: ${trust.created.join(', ')} (private keys in the encrypted secret store ${trust.store.dir})`);
      s.log(`hub certificate pin ${trust.hubTls.fingerprint}`);
      const hub = hubOf(plan);
      const spokes = plan.nodes.filter((n) => !n.hub);
      // The spokes this run enrolls and checks: every one, or the one node of a scoped run
      // (DeployContext.only; the others may be fenced for their own replacement meanwhile).
      const joining = scopedNodes(ctx, spokes);
      const scoped = ctx.only !== undefined;
      const hubG: GuestCall = { driver, node: hub, signal: s.signal };
      let changes = await syncFiles(hubG, hubEnrollmentFiles(plan, { hmacKey: trust.hmacKey, hubTls: trust.hubTls }), ['/etc/kubedos/enroll/revoked.json']);
      const caChainPem = trust.intermediate.certPem + trust.root.certPem;
      const hubStatus = (): Promise<HubStatus> => hubStatusOf(hubG);

      // Who still has to join: not on the hub's roster of enrolled keys, or no hub peer on a plane.
      const before = await hubStatus();
      const revoked = joining.filter((n) => before.revoked.includes(n.name));
      if (revoked.length) {
        throw new StageError(`${revoked.map((n) => n.name).join(', ')} ${revoked.length === 1 ? 'is' : 'are'} revoked on the hub and cannot enroll`, {
          node: revoked[0]!.name,
          hint: 'a revoked node is replaced, not re-admitted: recreate it (drill / kubedos deploy --allow-destroy) after removing it from revoked.json on purpose',
        });
      }
      const pending: PlanNode[] = [];
      for (const n of joining) {
        const st = await planesStatus({ driver, node: n, signal: s.signal });
        const hasHub = PLANE_NAMES.every((p) => (st.planes[p]?.peers?.length ?? 0) > 0);
        if (before.enrolled.includes(n.name) && hasHub) s.node(n.name, 'ok', 'already enrolled');
        else pending.push(n);
      }

      if (pending.length) {
        s.log(`enrolling ${pending.map((n) => n.name).join(', ')}`);
        const now = Math.floor(Date.now() / 1000);
        await eachNode(s, pending, async (n) => {
          const token = issueEnrollmentToken(trust.hmacKey, { cluster: plan.cluster.name, node: n.name, ttlSeconds: plan.enrollment.tokenTtlMinutes * 60, now });
          await syncFiles({ driver, node: n, signal: s.signal }, agentEnrollmentFiles({ hubTls: trust.hubTls, caChainPem, token }));
        });
        // The window: a transient unit on the master, so it outlives a dropped agent channel and
        // is closed by name. A leftover from an interrupted run is stopped first.
        await guestRun(hubG, ['systemctl', 'stop', WINDOW_UNIT], { okCodes: [0, 1, 5], what: 'close a leftover window' });
        const windowS = plan.enrollment.windowMinutes * 60;
        await guestRun(hubG, ['systemd-run', `--unit=${WINDOW_UNIT}`, '--collect', '--quiet', '--property=Type=exec', HUB_BIN, 'serve', '--window-seconds', String(windowS)], { what: 'open the enrollment window' });
        try {
          const openBy = Date.now() + 60_000;
          for (;;) {
            const st = await hubStatus();
            if (st.window) {
              s.log(`window open on ${st.window.listen}:${st.window.port} until ${new Date(st.window.closesAt * 1000).toISOString()}`, { node: hub.name });
              break;
            }
            if (Date.now() > openBy) {
              const j = await guestRun(hubG, ['journalctl', '--no-pager', '-o', 'cat', '-n', '30', '-u', WINDOW_UNIT], { okCodes: [0, 1] });
              throw new StageError(`${hub.name}: the enrollment window did not open`, { node: hub.name, command: [HUB_BIN, 'serve'], stderrTail: tail(j.stdout), hint: 'see journalctl -u kubedos-enroll-window on the master' });
            }
            await sleep(1000, s.signal);
          }
          await eachNode(s, pending, async (n) => {
            const g: GuestCall = { driver, node: n, signal: s.signal };
            for (let attempt = 1; ; attempt++) {
              const r = await guestRun(g, [AGENT_BIN, 'enroll'], { okCodes: [0, 2, 3, 4, 5], timeoutS: 120, what: 'kubedos-enroll-agent enroll' });
              for (const line of (r.stdout + r.stderr).trim().split('\n').filter(Boolean)) s.log(line, { node: n.name });
              if (r.exitCode === 0) break;
              if (r.exitCode === 4 && attempt < 10) {
                await sleep(3000, s.signal);
                continue;
              }
              throw new StageError(`${n.name} did not enroll: kubedos-enroll-agent exited ${r.exitCode}: ${AGENT_EXIT[r.exitCode] ?? 'unexpected'}`, {
                node: n.name,
                command: [AGENT_BIN, 'enroll'],
                exitCode: r.exitCode,
                stderrTail: tail(r.stderr || r.stdout),
                hint: `the journal keeps what succeeded; fix the cause and rerun the deploy: enrolled nodes are not enrolled again (${AGENT_EXIT[r.exitCode] ?? 'see the output'})`,
              });
            }
            changes++;
          });
          // Watch the hub's roster until every node is confirmed there.
          const confirmBy = Date.now() + 60_000;
          for (;;) {
            const st = await hubStatus();
            const missing = joining.filter((n) => !st.enrolled.includes(n.name));
            if (!missing.length) break;
            if (Date.now() > confirmBy) throw new StageError(`the hub did not confirm ${missing.map((n) => n.name).join(', ')}`, { node: missing[0]!.name, hint: 'see journalctl -u kubedos-enroll-window on the master (NOT confirmed: …)' });
            await sleep(2000, s.signal);
          }
        } finally {
          await guestRun(hubG, ['systemctl', 'stop', WINDOW_UNIT], { okCodes: [0, 1, 5], what: 'close the enrollment window' }).catch((err: unknown) => s.log(`closing the window failed: ${(err as Error).message}`, { stream: 'warn' }));
        }
        const after = await hubStatus();
        if (after.window) throw new StageError(`${hub.name}: the enrollment window is still open after closing it`, { node: hub.name, hint: `systemctl stop ${WINDOW_UNIT} on the master` });
        s.log(`window closed; enrolled: ${after.enrolled.join(', ')}`, { node: hub.name });
      }

      // Every spoke: a fresh handshake with the hub on each plane (pinging the hub's /32 through
      // the plane makes one if the last is old).
      const nowS = (): number => Math.floor(Date.now() / 1000);
      await eachNode(s, joining, async (n) => {
        const g: GuestCall = { driver, node: n, signal: s.signal };
        for (const p of PLANE_NAMES) {
          const hubAddr = hub.planes[p].address.replace(/\/32$/, '');
          await guestRun(g, ['ping', '-c', '2', '-W', '3', '-I', p, hubAddr], { okCodes: [0, 1], timeoutS: 30, what: `ping the hub on ${p}` });
        }
        const st = await planesStatus(g);
        const stale = staleHandshakes(st, nowS());
        if (stale.length) {
          throw new StageError(`${n.name}: no recent handshake with the hub on ${stale.join(', ')}`, {
            node: n.name,
            command: ['wg', 'show', stale[0]!],
            hint: 'the hub is unreachable on its plane ports (UDP) from this node: check the LAN and the hub\'s firewall counters (nft list table inet kubedos)',
          });
        }
        s.log(`${n.name}: handshakes with ${hub.name} on ${PLANE_NAMES.join(', ')}`, { node: n.name });
      });
      const hubSt = await planesStatus(hubG);
      // Every spoke linked (a scoped run checked its own node's handshakes above: the others may be fenced).
      if (!scoped) {
        for (const p of PLANE_NAMES) {
          const peers = hubSt.planes[p]?.peers?.length ?? 0;
          if (peers !== spokes.length) throw new StageError(`${hub.name}: ${p} has ${peers} peers, the plan has ${spokes.length} nodes to link`, { node: hub.name, hint: 'kubedos-enroll-hub status on the master' });
        }
      }
      // Each node's identity certificate from the cluster intermediate: issued now when missing or
      // due (security.keyRotation.kubeCertDays), its key kept encrypted in the SecretStore and
      // written to the node 0600; recorded in <workspace>/trust for the trust inventory.
      const ids = await ensureNodeIdentities({ plan: { ...plan, nodes: scopedNodes(ctx, plan.nodes) }, trustDir: trust.dir, store: trust.store, intermediate: trust.intermediate, kubeCertDays: validate.spec.spec.security.keyRotation.kubeCertDays, now: new Date() });
      for (const id of ids.filter((x) => x.issued)) s.log(`${id.node}: identity certificate issued (serial ${id.serial}, not after ${id.notAfter.slice(0, 10)}): ${id.why}`, { node: id.node });
      // When each node's WireGuard keys were first seen, for security.keyRotation.wireguardDays.
      const newKeys = recordWireguardKeys(ctx.workspace, plan.cluster.name, backplanes.wgPublicKeys, new Date(), scoped ? { others: 'keep' } : {});
      if (newKeys.length) s.log(`WireGuard keys recorded as new for ${newKeys.join(', ')} (rotation due in ${validate.spec.spec.security.keyRotation.wireguardDays} days)`);
      await eachNode(s, scopedNodes(ctx, plan.nodes), async (n) => {
        const id = ids.find((x) => x.node === n.name)!;
        changes += await syncFiles({ driver, node: n, signal: s.signal }, identityFiles(id, caChainPem));
      });
      s.changed(changes);
      return {
        hubPin: trust.hubTls.fingerprint,
        enrolled: joining.map((n) => n.name).sort(),
        summary: { stage: 'enroll', changes, notes: [pending.length ? `enrolled ${pending.map((n) => n.name).join(', ')}` : 'every node was already enrolled', `hub pin ${trust.hubTls.fingerprint}`, `identity certificates: ${ids.filter((x) => x.issued).length} issued, ${ids.filter((x) => !x.issued).length} still good`] },
      };
    },
  });
}
