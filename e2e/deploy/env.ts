// Shared helpers of the deploy lab: the real `kubedos` CLI as a child process (output kept in
// e2e/output/deploy-lab/*.log) and a workspace of its own per suite (journal, VM state, trust).
// Build inputs (artifact cache, age identity, build keys, darksite lock) are shared with every
// suite that builds lab-3 (e2e/shared-build.ts): one CI run builds lab-3 once.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import { TEMPLATES } from '../../common/spec/index';
import { drillEtcdctlArgv } from '../../main/drills/fence';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { offerSharedBuildInputs, sharedBuildEnv, takeSharedBuildInputs } from '../shared-build';

export const REPO = resolve(__dirname, '../..');
export const DEPLOY_LAB = join(REPO, 'e2e/output/deploy-lab');

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the deploy lab needs root (debootstrap, chroot, QEMU with swtpm); run it as root like CI does');
}

export function deployEnv(workspace: string): NodeJS.ProcessEnv {
  takeSharedBuildInputs(workspace, 'lab-3');
  const env: NodeJS.ProcessEnv = { ...process.env, KUBEDOS_WORKSPACE: workspace, KUBEDOS_BOOT_TIMEOUT_S: '1500', ...sharedBuildEnv() };
  delete env.SOURCE_DATE_EPOCH;
  return env;
}

export function writeSpec(dir: string, name = 'lab-3.yaml', text = TEMPLATES['lab-3'].text): string {
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  if (!existsSync(p) || text !== TEMPLATES['lab-3'].text) writeFileSync(p, text);
  return p;
}

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI, teeing its output into logFile; resolves when it exits (or is killed at timeout). */
/** `prefix` runs the CLI under another command (e.g. ['ip', 'netns', 'exec', NS]). */
/** `offerSharedBuild: false`: the workspace's keys and lock are not offered to the shared build (a
 * lock that holds a loopback source's packages must not seed the other suites'). */
export function kubedosAsync(args: string[], o: { env: NodeJS.ProcessEnv; cwd: string; logFile: string; timeoutMs: number; onStdout?: (soFar: string) => void; onStderr?: (chunk: string) => void; prefix?: readonly string[]; offerSharedBuild?: boolean }): Promise<CliRun> {
  mkdirSync(DEPLOY_LAB, { recursive: true });
  const log = createWriteStream(o.logFile);
  const started = Date.now();
  return new Promise((res) => {
    const argv = [...(o.prefix ?? []), process.execPath, join(REPO, 'bin/kubedos.mjs'), ...args];
    const child = spawn(argv[0]!, argv.slice(1), { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      log.write(d);
      o.onStdout?.(stdout);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      log.write(d);
      o.onStderr?.(d.toString());
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), o.timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      if (o.env.KUBEDOS_WORKSPACE && o.offerSharedBuild !== false) offerSharedBuildInputs(o.env.KUBEDOS_WORKSPACE, 'lab-3');
      log.end();
      res({ status, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** "stage outcome" pairs of the CLI's final `done in …: validate unchanged, plan …` line. */
export function outcomes(stdout: string): Record<string, string> {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith('done in '));
  if (!line) return {};
  const list = line.slice(line.indexOf(': ') + 2);
  return Object.fromEntries(list.split(', ').map((p) => {
    const i = p.indexOf(' ');
    return [p.slice(0, i), p.slice(i + 1)];
  }));
}

/** Every stage ran and succeeded (none skipped by its probe, none failed or aborted), and those that rebuild a cluster made changes. */
export function expectFreshDeploy(stdout: string, stages: readonly string[]): void {
  for (const s of stages) expect(stdout, s).toMatch(new RegExp(`^✓ ${s} success`, 'm'));
  expect(stdout.split('\n').filter((l) => /^(↷|✗|■) /.test(l))).toEqual([]);
  const o = outcomes(stdout);
  for (const s of ['provision', 'enroll', 'converge', 'seal']) expect(o[s], s).toMatch(/^changed \(\d+\)$/);
}

/** lab-3 with `spec.substrate` switched to proxmox, naming exactly the stand-in's node, storages and bridges. */
export function standinSpecText(standin: ProxmoxStandIn): string {
  const s = standin.settings();
  const qemuBlock = ['  substrate:', '    type: qemu', '    qemu:', '      accel: auto', '      storagePools:', '        - name: local', '          type: dir', '      bridges:', '        - name: kubedos0', ''].join('\n');
  const proxmoxBlock = [
    '  substrate:',
    '    type: proxmox',
    '    proxmox:',
    '      clusterName: standin',
    `      node: ${s.node}`,
    '      host: pve-standin',
    '      storagePools:',
    ...Object.entries(s.storages).flatMap(([name, st]) => [`        - name: ${name}`, `          type: ${st.type}`]),
    `      isoStorage: ${Object.keys(s.storages).find((n) => s.storages[n]?.content.includes('iso'))}`,
    '      bridges:',
    ...s.bridges.map((b) => `        - name: ${b}`),
    '',
  ].join('\n');
  const text = TEMPLATES['lab-3'].text;
  if (!text.includes(qemuBlock)) throw new Error('the lab-3 template\'s substrate block changed: update standinSpecText');
  return text.replace(qemuBlock, proxmoxBlock);
}

/** etcdctl on an etcd member over its wg3 address, with the member's peer certificate (as kubedos start checks health); add the command, e.g. 'endpoint', 'health'. */
export function etcdctlOn(member: { planes: { wg3: { address: string } } }): string[] {
  // The drills' etcdctl, with their timeouts: etcdctl's default 5 s per command timed out on a put
  // right after a five-node deploy (TLS on a TCG guest, the host's two cores saturated).
  return drillEtcdctlArgv([member], []);
}

/** Opt-in image proof (KUBEDOS_LAB_IMAGES=1, `npm run test:deploy:images`): lab-3 as it is, plus one image under spec.sources.images. */
export const LAB_IMAGES = process.env.KUBEDOS_LAB_IMAGES === '1';

/** lab-3 with `spec.sources.images` declaring one image (Kubernetes stays off: the runtime runs alone). */
export function imagesSpecText(image: { name: string; reference: string; digest: string }): string {
  const text = TEMPLATES['lab-3'].text;
  const anchor = '\n  acceptance:\n';
  if (!text.includes(anchor) || /^ {2}sources:/m.test(text)) throw new Error('the lab-3 template changed (no "acceptance:" block, or sources already declared): update imagesSpecText');
  const block = ['', '  sources:', '    images:', `      - name: ${image.name}`, `        reference: ${image.reference}`, `        digest: "${image.digest}"`, ''].join('\n');
  return text.replace(anchor, `${block}${anchor}`);
}
