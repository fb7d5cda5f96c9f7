import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/index';
import type { BuildReport } from '../build/index';
import type { StageContext } from '../pipeline/runner';
import { StageError, hashInputs } from '../pipeline/runner';
import type { GuestExecResult, SubstrateDriver } from '../substrate/driver';
import type { DeployContext } from './context';
import { CONVERGE_STATE_FILE, writeConvergeState } from './converge-state';
import { missingFromLock, missingImages, runtimeNote, workloadInputs, workloadMode, workloadStage } from './workload';

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;
const REF = 'registry.invalid/kubedos/proof:1.0';

function lab(images: { name: string; reference: string; digest: string }[] = [], kubernetes = false): ClusterSpec {
  const spec = structuredClone(parseSpec(TEMPLATES['lab-3'].text).spec!);
  spec.spec.sources.images = images;
  spec.spec.kubernetes.enabled = kubernetes;
  return spec;
}

const RECAP = (hosts: string[]): string =>
  ['TASK [kubedos_containerd : Containerd from the darksite] ***', 'PLAY RECAP ***', ...hosts.map((h) => `${h}                       : ok=9    changed=4    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0`), ''].join('\n');

/** A driver that answers ansible-playbook with `recap` and ctr with `ctrList`, recording every argv. */
const FP_AFTER = 'f'.repeat(64);
function fakeDriver(recap: string, ctrList: (vmid: number) => string): { driver: SubstrateDriver; calls: { vmid: number; argv: readonly string[] }[]; writes: { vmid: number; path: string }[] } {
  const calls: { vmid: number; argv: readonly string[] }[] = [];
  const writes: { vmid: number; path: string }[] = [];
  const driver = {
    async guestExec(vmid: number, argv: readonly string[]): Promise<GuestExecResult> {
      calls.push({ vmid, argv });
      if (argv.includes('ansible-playbook')) return { exitCode: 0, stdout: recap, stderr: '' };
      if (argv[0] === 'ctr') return { exitCode: 0, stdout: ctrList(vmid), stderr: '' };
      // The converge fingerprint (sh -c …), taken again after the runtime changed the node.
      if (argv[0] === 'sh') return { exitCode: 0, stdout: `${FP_AFTER}\n`, stderr: '' };
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    async guestFileRead(): Promise<Buffer> {
      throw new Error('no log yet');
    },
    async guestFileWrite(vmid: number, path: string): Promise<void> {
      writes.push({ vmid, path });
    },
  } as unknown as SubstrateDriver;
  return { driver, calls, writes };
}

function stageCtx(): StageContext & { logs: string[]; nodes: string[]; count: number } {
  const out = {
    runId: 'abcdef0123456789',
    stage: 'workload',
    signal: new AbortController().signal,
    allowDestroy: false,
    attempt: 1,
    logs: [] as string[],
    nodes: [] as string[],
    count: -1,
    log(line: string) {
      out.logs.push(line);
    },
    progress() {},
    node(node: string, state: string, message?: string) {
      out.nodes.push(`${node} ${state} ${message ?? ''}`.trim());
    },
    async checkpoint<T>(_k: string, effect: () => Promise<T>): Promise<T> {
      return effect();
    },
    changed(n = 1) {
      out.count = n;
    },
  };
  return out;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function buildWith(packages: string[]): BuildReport {
  const outDir = mkdtempSync(join(tmpdir(), 'kubedos-workload-'));
  dirs.push(outDir);
  mkdirSync(join(outDir, 'darksite'), { recursive: true });
  writeFileSync(join(outDir, 'darksite', 'darksite.lock.json'), JSON.stringify({ packages: packages.map((name) => ({ name })) }));
  return { outDir } as unknown as BuildReport;
}

async function runStage(spec: ClusterSpec, driver: SubstrateDriver, build: BuildReport, s: StageContext, workspace = build.outDir): Promise<unknown> {
  const ctx = { workspace, substrate: () => ({ driver, storage: 'local' }) } as unknown as DeployContext;
  return workloadStage(ctx).run(s, { validate: { spec }, plan: { plan: plan(spec), json: '' }, build, converge: {} });
}

describe('workload: Kubernetes off, images declared', () => {
  const img = [{ name: 'proof', reference: REF, digest: DIGEST_A }];

  it('decides the mode once: kubernetes, the runtime alone, or nothing', () => {
    expect(workloadMode(lab()).kind).toBe('none');
    const rt = workloadMode(lab(img));
    expect(rt).toEqual({ kind: 'runtime', tags: ['runtime'], images: img });
    expect(workloadMode(lab(img, true))).toEqual({ kind: 'kubernetes', tags: ['runtime', 'kubernetes', 'cni'] });
  });

  it('inputs: unchanged without images, follow the digests with them, none with Kubernetes', () => {
    expect(workloadInputs(lab())).toEqual({ kubernetes: false });
    expect(workloadInputs(lab(img, true))).toBeUndefined();
    const a = hashInputs(workloadInputs(lab(img)));
    expect(hashInputs(workloadInputs(lab(img)))).toBe(a);
    expect(hashInputs(workloadInputs(lab([{ ...img[0]!, digest: DIGEST_B }])))).not.toBe(a);
    expect(a).not.toBe(hashInputs(workloadInputs(lab())));
  });

  it('pure helpers: containerd in the lock, references containerd lacks, the note', () => {
    expect(missingFromLock(JSON.stringify({ packages: [{ name: 'containerd' }] }), ['containerd'])).toEqual([]);
    expect(missingFromLock(JSON.stringify({ packages: [{ name: 'etcd-server' }] }), ['containerd'])).toEqual(['containerd']);
    expect(missingImages(img, `other/x:1\n${REF}\n`)).toEqual([]);
    expect(missingImages(img, 'other/x:1\n')).toEqual([REF]);
    expect(runtimeNote(1, ['cp-1', 'w-1'])).toBe('Kubernetes off; containerd running with 1 image from the artifact on cp-1, w-1');
  });

  it('runs the runtime play only, asks containerd on the nodes it ran on, and names them', async () => {
    const spec = lab(img);
    const p = plan(spec);
    const targets = p.nodes.filter((n) => n.role === 'control-plane' || n.role === 'worker').map((n) => n.name);
    expect(targets.length).toBeGreaterThan(0);
    const { driver, calls, writes } = fakeDriver(RECAP(targets), () => `${REF}\n`);
    const s = stageCtx();
    const build = buildWith(['containerd']);
    const before = Object.fromEntries(p.nodes.map((n) => [n.name, 'a'.repeat(64)]));
    writeConvergeState(build.outDir, { inputs: 'c'.repeat(64), runId: 'converge-run', nodes: before });
    const out = (await runStage(spec, driver, build, s)) as { kubernetes: string; summary: { notes: string[]; changes: number } };
    const play = calls.find((c) => c.argv.includes('ansible-playbook'))!;
    expect(play.argv[play.argv.indexOf('--tags') + 1]).toBe('runtime');
    expect(calls.filter((c) => c.argv[0] === 'ctr').map((c) => c.vmid).sort()).toEqual(p.nodes.filter((n) => targets.includes(n.name)).map((n) => n.vmid).sort());
    expect(out.kubernetes).toBe('disabled');
    expect(out.summary.notes[0]).toMatch(new RegExp(`^Kubernetes off; containerd running with 1 image from the artifact on ${targets.join(', ')}; the spec enables etcd, prometheus$`));
    expect(out.summary.changes).toBe(4 * targets.length);
    expect(s.count).toBe(4 * targets.length);
    // The converge record of the runtime's nodes is taken again (containerd is in the fingerprint);
    // the other nodes' stay as converge left them, and the hub gets the new record.
    const state = JSON.parse(readFileSync(join(build.outDir, CONVERGE_STATE_FILE), 'utf8')) as { inputs: string; runId: string; nodes: Record<string, string> };
    expect(state).toEqual({ inputs: 'c'.repeat(64), runId: 'converge-run', nodes: Object.fromEntries(p.nodes.map((n) => [n.name, targets.includes(n.name) ? FP_AFTER : 'a'.repeat(64)])) });
    const hub = p.nodes.find((n) => n.hub)!;
    expect(writes.filter((w) => w.vmid === hub.vmid).length).toBeGreaterThan(0);
  }, 20_000);

  it('names only the nodes the play ran on', async () => {
    const spec = lab(img);
    const first = plan(spec).nodes.find((n) => n.role === 'control-plane')!.name;
    const { driver } = fakeDriver(RECAP([first, 'master']), () => `${REF}\n`);
    const out = (await runStage(spec, driver, buildWith(['containerd']), stageCtx())) as { summary: { notes: string[] } };
    expect(out.summary.notes[0]).toContain(`from the artifact on ${first};`);
  }, 20_000);

  it('fails naming the node and the reference when containerd lacks an image', async () => {
    const spec = lab(img);
    const p = plan(spec);
    const targets = p.nodes.filter((n) => n.role === 'control-plane' || n.role === 'worker');
    const { driver } = fakeDriver(RECAP(targets.map((n) => n.name)), (vmid) => (vmid === targets.at(-1)!.vmid ? '' : `${REF}\n`));
    const err = await runStage(spec, driver, buildWith(['containerd']), stageCtx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StageError);
    expect((err as Error).message).toBe(`${targets.at(-1)!.name}: containerd does not list ${REF} after the runtime play`);
  }, 20_000);

  it('refuses before any play when the darksite has no containerd', async () => {
    const { driver, calls } = fakeDriver('', () => '');
    const err = await runStage(lab(img), driver, buildWith(['etcd-server']), stageCtx()).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/declares 1 image\(s\) under spec\.sources\.images but the darksite has no containerd/);
    expect(calls).toEqual([]);
  });

  it('probe: converged while containerd lists every declared image on the control planes and workers; moved otherwise', async () => {
    const spec = lab(img);
    const p = plan(spec);
    const w = p.nodes.find((n) => n.role === 'worker')!;
    const last = { kubernetes: 'disabled' as const, summary: { stage: 'workload', changes: 0, notes: ['recorded verdict'] } };
    const probe = (ctrList: (vmid: number) => string) => {
      const { driver } = fakeDriver('', ctrList);
      const ctx = { substrate: () => ({ driver, storage: 'local' }) } as unknown as DeployContext;
      return workloadStage(ctx).probe!({ signal: new AbortController().signal, log: () => undefined }, { validate: { spec }, plan: { plan: p, json: '' } }, last);
    };
    expect(await probe(() => `${REF}\n`)).toEqual({ moved: false, note: 'recorded verdict' });
    expect(await probe((vmid) => (vmid === w.vmid ? '' : `${REF}\n`))).toEqual({ moved: true, reason: `${w.name}: containerd does not list ${REF}` });
  });

  it('without images: the old note, nothing run on the nodes', async () => {
    const { driver, calls } = fakeDriver('', () => '');
    const out = (await runStage(lab(), driver, buildWith([]), stageCtx())) as { summary: { notes: string[] } };
    expect(out.summary.notes).toEqual(['Kubernetes off in the spec: no workload layer installed; the spec enables etcd, prometheus, set up by the converge stage']);
    expect(calls).toEqual([]);
  });
});
