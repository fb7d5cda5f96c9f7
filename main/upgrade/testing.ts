// Test helpers for the upgrade preflight: small build directories signed with the project's own
// signing code (keys.ts buildSigningKey from an age-encrypted SecretStore, attest.ts manifest,
// SBOM, provenance and DSSE), a sealed deploy's bundle/build folder and a deploy journal. Real
// signatures, real verification; no image is built (that takes minutes).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { BuildManifest, OutputRecord } from '../build/attest';
import { envelopePath, MANIFEST_FILE, payloadTypeFor, PROVENANCE_FILE, PUBLIC_KEY_FILE, renderManifest, renderProvenance, renderSbom, SBOM_FILE, SIGNED_FILES, signDsse } from '../build/attest';
import type { LockedPackage } from '../build/darksite/pins';
import { BUNDLE_PATHS } from '../bundle/schema';
import { clusterWorkspace, makePrivateDir, WORKSPACE_LAYOUT } from '../workspace';

export interface SigningKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  keyid: string;
}

export interface ArtifactFixture {
  cluster: string;
  version: string;
  /** name → version */
  packages: Record<string, string>;
  /** output path (payload/<role>/… or images/<cluster>-<role>.qcow2) → content */
  payload: Record<string, string>;
  key: SigningKey;
  /** Leave the signatures out (an unsigned build). */
  unsigned?: boolean;
}

const EPOCH = 1_767_225_600; // 2026-01-01, fixed: nothing here reads the clock

function lockedPackages(packages: Record<string, string>): LockedPackage[] {
  return Object.keys(packages)
    .sort()
    .map((name) => ({ name, version: packages[name]!, architecture: 'amd64', sha256: sha256Hex(`${name}=${packages[name]}`), size: 1000, filename: `${name}_${packages[name]!.replace(/:/g, '%3a')}_amd64.deb`, roles: ['master'], source: 'debian/bookworm' }));
}

/** Writes a build directory as `kubedos build` lays it out (payload outputs only), signed unless `unsigned`. */
export function writeArtifact(dir: string, a: ArtifactFixture): void {
  const outputs: OutputRecord[] = [];
  for (const [path, text] of Object.entries(a.payload).sort(([x], [y]) => (x < y ? -1 : 1))) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
    const image = path.startsWith('images/');
    outputs.push({ path, sha256: sha256Hex(text), size: Buffer.byteLength(text), kind: image ? 'image' : 'payload', role: image ? path.replace(/^images\/[^-]+-|\.qcow2$/g, '') : path.split('/')[1] });
  }
  const manifest: BuildManifest = {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'BuildManifest',
    cluster: a.cluster,
    artifactVersion: a.version,
    sourceDateEpoch: EPOCH,
    roles: ['master'],
    inputs: { spec: { path: 'lab.yaml', sha256: sha256Hex(a.cluster) }, planSha256: sha256Hex('plan'), lockSha256: sha256Hex(JSON.stringify(a.packages)), payload: {}, hostFiles: [], tools: {} },
    outputs,
  };
  const files: Record<(typeof SIGNED_FILES)[number], string> = {
    [MANIFEST_FILE]: renderManifest(manifest),
    [SBOM_FILE]: renderSbom({
      cluster: a.cluster,
      artifactVersion: a.version,
      sourceDateEpoch: EPOCH,
      packages: lockedPackages(a.packages),
      payloadFiles: outputs.filter((o) => o.kind === 'payload').map((o) => ({ role: o.role!, path: o.path.split('/').slice(2).join('/'), sha256: o.sha256 })),
      tools: {},
      kubedosVersion: '0.1.0',
      outputs,
    }),
    [PROVENANCE_FILE]: renderProvenance({ manifest, externalParameters: {}, kubedosVersion: '0.1.0', nodeVersion: 'v20', invocationId: 'test' }),
  };
  mkdirSync(join(dir, 'signatures'), { recursive: true });
  for (const f of SIGNED_FILES) {
    writeFileSync(join(dir, f), files[f]);
    if (!a.unsigned) writeFileSync(join(dir, envelopePath(f)), JSON.stringify(signDsse(payloadTypeFor(f), Buffer.from(files[f]), a.key.privateKey, a.key.keyid)));
  }
  if (!a.unsigned) writeFileSync(join(dir, PUBLIC_KEY_FILE), a.key.publicKeyPem);
}

/** What a seal stage leaves of build N in the workspace: bundle/build/{manifest, SBOM, provenance, signatures}. */
export function writeSealedBuild(cluster: string, env: NodeJS.ProcessEnv, a: Omit<ArtifactFixture, 'cluster'>): string {
  const dir = join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.buildDir);
  makePrivateDir(dir);
  writeArtifact(dir, { ...a, cluster, payload: {} });
  return dir;
}

/** A deploy run in the cluster's journal: every stage a success, or one failing on a node. */
export function writeDeployJournal(cluster: string, env: NodeJS.ProcessEnv, o: { failAt?: { stage: string; node: string; message: string }; finished?: boolean; after?: { pipeline: 'stop' | 'start' | 'destroy'; ok: boolean }[] } = {}): void {
  const stages = ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal'];
  const events: PipelineEvent[] = [];
  let seq = 0;
  let minute = 0;
  const time = (): string => `2026-12-02T10:${String(minute++).padStart(2, '0')}:00.000Z`;
  const add = (e: Record<string, unknown>): void => {
    events.push({ seq: seq++, time: time(), ...e } as PipelineEvent);
  };
  add({ runId: 'deploy-1', type: 'run', state: 'started', stages, pipeline: 'deploy' });
  const summary: Record<string, string> = {};
  for (const s of stages) {
    if (o.failAt?.stage === s) {
      add({ runId: 'deploy-1', type: 'node', stage: s, node: o.failAt.node, state: 'failed', message: o.failAt.message });
      add({ runId: 'deploy-1', type: 'stage', stage: s, state: 'failed', rerun: 'safe-rerun', attempt: 0 });
      add({ runId: 'deploy-1', type: 'failed', error: { stage: s, node: o.failAt.node, message: o.failAt.message } });
      summary[s] = 'failed';
      break;
    }
    add({ runId: 'deploy-1', type: 'stage', stage: s, state: 'success', rerun: 'safe-rerun', attempt: 0, durationMs: 1 });
    summary[s] = 'success';
  }
  if (o.finished !== false) add({ runId: 'deploy-1', type: 'done', summary, durationMs: 1000 });
  (o.after ?? []).forEach((l, i) => {
    const runId = `${l.pipeline}-${i}`;
    add({ runId, type: 'run', state: 'started', stages: [l.pipeline], pipeline: l.pipeline });
    if (!l.ok) add({ runId, type: 'failed', error: { stage: l.pipeline, message: `${l.pipeline} failed on purpose` } });
    add({ runId, type: 'done', summary: { [l.pipeline]: l.ok ? 'success' : 'failed' }, durationMs: 10 });
  });
  const path = join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.journal);
  makePrivateDir(dirname(path));
  writeFileSync(path, events.map((e) => JSON.stringify(e)).join('\n') + '\n', { mode: 0o600 });
}

// GRUB's side of the A/B boot counter, run by bash: the shims do what GRUB's load_env, save_env
// and set do with the environment block, backed by the real grub-editenv (boot-counting.test.ts
// and slot-write.test.ts walk boots with it).
export const GRUB_SHIM = [
  'builtin set -eu',
  'load_env() {',
  '  local f="$2"; shift 2',
  '  local line k v name',
  '  while IFS= read -r line; do',
  '    k="${line%%=*}"; v="${line#*=}"',
  "    for name in \"$@\"; do if [ \"$name\" = \"$k\" ]; then printf -v \"$k\" '%s' \"$v\"; fi; done",
  '  done < <(grub-editenv "$f" list)',
  '}',
  'save_env() {',
  '  local f="$2"; shift 2',
  '  local kv=() name',
  '  for name in "$@"; do kv+=("$name=${!name-}"); done',
  '  grub-editenv "$f" set "${kv[@]}"',
  '}',
  "set() { printf -v \"${1%%=*}\" '%s' \"${1#*=}\"; }",
  'kubedos_env="$1"',
  'kubedos_active= kubedos_try= kubedos_tries= kubedos_failed=',
  '. "$2"',
  'echo "$kubedos_slot"',
].join('\n');

/** One boot's slot choice: payload/upgrade/boot-select.cfg run through GRUB_SHIM on `envFile` (it may count a try down). */
export function grubBootSelect(envFile: string, bootSelectCfg: string): string {
  return execFileSync('bash', ['-c', GRUB_SHIM, 'grub', envFile, bootSelectCfg], { encoding: 'utf8' }).trim();
}

/**
 * A slot write killed mid-write: starts `argv` (kubedos-slot-write …) with the image's first 4 MiB on
 * its standard input, waits until `firstMiB()` (read back from the slot's partition) equals the
 * image's first MiB — dd is writing — then SIGKILLs the writer's whole process group.
 * Returns the signal it died of and what it printed.
 */
export async function killSlotWriteMidWrite(argv: readonly string[], env: NodeJS.ProcessEnv, image: Buffer, firstMiB: () => Buffer): Promise<{ signal: NodeJS.Signals | null; out: string }> {
  const MiB = 1024 * 1024;
  const child = spawn(argv[0]!, argv.slice(1), { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.stdin.on('error', () => undefined); // the pipe breaks when the writer dies
  child.stdin.write(image.subarray(0, 4 * MiB));
  const first = image.subarray(0, MiB);
  const deadline = Date.now() + 15_000;
  while (!firstMiB().equals(first)) {
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL');
      throw new Error(`the writer never wrote its first MiB: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(-child.pid!, 'SIGKILL');
  return { signal: await exited, out };
}
