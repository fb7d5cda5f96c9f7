// Brings the real backplane payload up in a Lab: trust material from main/trust, node.json and
// enrollment files into every node, `kubedos-planes up`, the hub's window, node agents.
import type { ChildProcess } from 'node:child_process';
import { canonicalJson } from '../../common/canonical';
import { nodeConfig } from '../../common/plan/index';
import type { RunResult } from '../exec/runner';
import type { CertifiedKey } from '../trust/index';
import {
  agentEnrollmentFiles,
  createClusterIntermediate,
  createRootCa,
  generateHmacKey,
  hubEnrollmentFiles,
  issueEnrollmentToken,
  issueHubTlsCert,
  PATHS,
} from '../trust/index';
import type { Lab } from './harness';
import { NODE_PAYLOAD_DIR } from './harness';

export interface LabTrust {
  root: CertifiedKey;
  intermediate: CertifiedKey;
  hubTls: CertifiedKey;
  hmacKey: Buffer;
}

export const bin = (name: string): string => `${NODE_PAYLOAD_DIR}/${name}`;

export async function makeTrust(lab: Lab): Promise<LabTrust> {
  const now = new Date();
  const root = await createRootCa({ name: lab.plan.cluster.name, now });
  const intermediate = await createClusterIntermediate(root, { cluster: lab.plan.cluster.name, now });
  const hubTls = await issueHubTlsCert(intermediate, { cluster: lab.plan.cluster.name, hub: lab.hub.name, lanAddress: lab.hub.plan.lan.address, now });
  return { root, intermediate, hubTls, hmacKey: generateHmacKey() };
}

/** Writes node.json everywhere, the hub's enrollment files on the hub and the pin on spokes. */
export async function installContracts(lab: Lab, trust: LabTrust): Promise<void> {
  await Promise.all(
    [...lab.nodes.values()].map(async (n) => {
      await lab.writeFile(n.name, '/etc/kubedos/node.json', `${canonicalJson(nodeConfig(lab.plan, n.name), 2)}\n`);
      const files = n.plan.hub ? hubEnrollmentFiles(lab.plan, { hmacKey: trust.hmacKey, hubTls: trust.hubTls })
        : agentEnrollmentFiles({ hubTls: trust.hubTls, caChainPem: trust.intermediate.certPem + trust.root.certPem });
      for (const f of files) await lab.writeFile(n.name, f.path, f.content, f.mode);
    }),
  );
}

export async function planesUp(lab: Lab): Promise<void> {
  await Promise.all([...lab.nodes.keys()].map((n) => lab.exec(n, [bin('kubedos-planes'), 'up'])));
}

export function token(lab: Lab, trust: LabTrust, o: { node?: string; role?: string; ttlSeconds?: number; now?: number; key?: Uint8Array }): string {
  return issueEnrollmentToken(o.key ?? trust.hmacKey, {
    cluster: lab.plan.cluster.name,
    ...(o.node !== undefined ? { node: o.node } : {}),
    ...(o.role !== undefined ? { role: o.role } : {}),
    ttlSeconds: o.ttlSeconds ?? 900,
    now: o.now ?? Math.floor(Date.now() / 1000),
  });
}

export interface EnrollmentWindow {
  process: ChildProcess;
  output: () => string;
  closed: Promise<number | null>;
}

/** Starts `kubedos-enroll-hub serve` on the hub and waits until it listens. */
export async function openWindow(lab: Lab, seconds: number, extra: readonly string[] = []): Promise<EnrollmentWindow> {
  const child = lab.spawnDaemon(lab.hub.name, [bin('kubedos-enroll-hub'), 'serve', '--window-seconds', String(seconds), ...extra], `enroll-window-${Date.now()}`);
  const closed = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  const output = (child as ChildProcess & { output: () => string }).output;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const r = await lab.try(lab.hub.name, ['/bin/cat', '/run/kubedos/enroll-window.json']);
    if (r.exitCode === 0) return { process: child, output, closed };
    if (child.exitCode !== null) break;
    await new Promise((r2) => setTimeout(r2, 100));
  }
  throw new Error(`enrollment window did not open on ${lab.hub.name}:\n${output()}`);
}

/** Runs the node agent with a token; returns the raw result (exit code tells the outcome). */
export async function enroll(lab: Lab, node: string, tok: string, extra: string[] = []): Promise<RunResult> {
  await lab.writeFile(node, PATHS.token, `${tok}\n`, 0o600);
  return lab.try(node, [bin('kubedos-enroll-agent'), 'enroll', ...extra], { timeoutMs: 60_000 });
}

/** Full bring-up: contracts, planes, one window, every spoke enrolled with a node-bound token. */
export async function bringUp(lab: Lab, trust: LabTrust, windowSeconds = 120): Promise<EnrollmentWindow> {
  await installContracts(lab, trust);
  await planesUp(lab);
  const w = await openWindow(lab, windowSeconds);
  const results = await Promise.all(lab.spokes.map(async (n) => ({ n: n.name, r: await enroll(lab, n.name, token(lab, trust, { node: n.name })) })));
  const failed = results.filter((x) => x.r.exitCode !== 0);
  if (failed.length) throw new Error(`enrollment failed: ${failed.map((f) => `${f.n}: ${f.r.stderr.trim()}`).join('\n')}\nhub:\n${w.output()}`);
  return w;
}
