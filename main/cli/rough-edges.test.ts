// What a new user hits at the terminal, each checked through main() as the CLI runs it: one-line
// usage mistakes with "did you mean", files named in words, counts in the singular, a WHY for every
// flow, in-place updates in a plan diff, the target read from the spec, qemu-local notes, and
// `status --json` always JSON.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterStatus } from '../../common/pipeline/status';
import { plan } from '../../common/plan/index';
import { parseSpec } from '../../common/spec/parse';
import { TEMPLATES } from '../../common/spec/templates/index';
import { templateWithSources, toYaml } from '../../common/testing/specs';
import type { HostFacts } from '../deploy/host-capacity';
import type { CliIo } from './command';
import { main } from './main';
import { printQemuLocalNotes } from './qemu-local-notes';

let dir: string;
let ws: string;

interface Run {
  code: number;
  out: string;
  err: string;
}

function capture(): { io: Partial<CliIo>; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t), cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KUBEDOS_WORKSPACE: ws }, signal: new AbortController().signal, isTty: false }, out, err };
}

async function kubedos(...argv: string[]): Promise<Run> {
  const c = capture();
  const code = await main(argv, c.io);
  return { code, out: c.out.join('\n'), err: c.err.join('\n') };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kd-edges-'));
  ws = join(dir, 'ws');
  mkdirSync(ws);
  for (const name of ['lab-3', 'reference-16', 'solo-1'] as const) writeFileSync(join(dir, `${name}.yaml`), TEMPLATES[name].text);
  writeFileSync(join(dir, 'reference-16-sourced.yaml'), toYaml(templateWithSources('reference-16')));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('usage mistakes: one line, with the closest valid word', () => {
  it('an unknown option names the flag, the command and the closest option', async () => {
    const r = await kubedos('deploy', 'lab-3.yaml', '--targt', 'qemu-local');
    expect(r.code).toBe(2);
    expect(r.err).toBe('kubedos: unknown option --targt for `kubedos deploy`; did you mean --target?');
    expect(r.out).toBe('');
  });
  it('an option nothing is close to points at --help; a missing value says so', async () => {
    expect((await kubedos('plan', 'lab-3.yaml', '--frobnicate')).err).toBe('kubedos: unknown option --frobnicate for `kubedos plan` (kubedos plan --help lists its options)');
    const r = await kubedos('plan', 'lab-3.yaml', '--out');
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe('kubedos plan: option --out needs a value (--out VALUE)');
    expect(r.err).not.toMatch(/To specify a positional argument/);
  });
  it('an unknown command: did you mean, in one line', async () => {
    const r = await kubedos('depoly', 'lab-3.yaml');
    expect(r.code).toBe(2);
    expect(r.err).toBe('kubedos: unknown command "depoly"; did you mean `kubedos deploy`?');
  });
  it('an unknown template: did you mean', async () => {
    const r = await kubedos('init', '--template', 'lab3', 'x.yaml');
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe('kubedos init: unknown template "lab3"; did you mean lab-3? (templates: reference-16, lab-3, solo-1)');
  });
  it('wiring without arguments prints its usage once', async () => {
    const r = await kubedos('wiring');
    expect(r.code).toBe(2);
    expect(r.err.match(/usage/g)).toHaveLength(1);
    expect(r.err).toContain('missing the action');
  });
});

describe('files in words', () => {
  it('a missing spec: "spec file not found: PATH" and the next step, no position, no [(document)]', async () => {
    for (const cmd of [['validate', 'nope.yaml'], ['plan', 'nope.yaml'], ['deploy', 'nope.yaml']]) {
      const r = await kubedos(...cmd);
      expect(r.code).toBe(1);
      expect(r.err).toBe(`kubedos: spec file not found: ${join(dir, 'nope.yaml')}; create one with: kubedos init --template lab-3 nope.yaml`);
    }
  });
  it('a file error from anywhere is said without the errno text', async () => {
    const r = await kubedos('plan', 'lab-3.yaml', '--out', join(dir, 'no-such-dir', 'p.json'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`kubedos plan: file not found: ${join(dir, 'no-such-dir', 'p.json')}`);
    expect(r.err).not.toMatch(/ENOENT|no such file or directory, open/);
    const against = await kubedos('plan', 'lab-3.yaml', '--against', 'old.json');
    expect(against.err).toBe(`previous plan not found: ${join(dir, 'old.json')}; write one with: kubedos plan SPEC --out old.json`);
  });
  it('a YAML syntax error has no [(document)] location', async () => {
    writeFileSync(join(dir, 'tab.yaml'), TEMPLATES['lab-3'].text.replace('\n  substrate:', '\n\tsubstrate:'));
    const r = await kubedos('validate', 'tab.yaml');
    expect(r.err.split('\n')).toEqual([expect.stringMatching(/^tab\.yaml:\d+:1: error: tabs are not allowed for indentation in YAML; replace the tab at line \d+ with spaces$/), 'tab.yaml: 1 error']);
  });
});

describe('plan output', () => {
  it('"1 node", not "1 nodes"', async () => {
    expect((await kubedos('validate', 'solo-1.yaml')).out).toBe('solo-1.yaml: valid (1 node, cluster solo-1)');
    expect((await kubedos('plan', 'solo-1.yaml')).out.split('\n').at(-1)).toBe('1 node');
  });
  it('every allowed flow has a WHY, from the services when the spec gives no description', async () => {
    const out = (await kubedos('plan', 'lab-3.yaml')).out.split('\n');
    const flows = out.slice(out.findIndex((l) => l.startsWith('FROM')) + 1).filter((l) => /^wg\d/.test(l));
    // lab-3 runs no Kubernetes (no upstream sources): 6443 stays allowed by its policy, only etcd serves there.
    expect(flows).toEqual(['wg1   wg3  6443/tcp, 2379-2380/tcp  for etcd', 'wg2   wg3  9100/tcp                 for node-exporter']);
  });
  it('plan --against: more memory is an update in place, not a replace', async () => {
    expect((await kubedos('plan', 'lab-3.yaml', '--out', 'before.json')).code).toBe(0);
    writeFileSync(join(dir, 'more-memory.yaml'), TEMPLATES['lab-3'].text.replace('memoryMiB: 1536', 'memoryMiB: 2048'));
    const r = await kubedos('plan', 'more-memory.yaml', '--against', 'before.json');
    expect(r.out).toMatch(/^update\s+w-1\s+memory 1536 -> 2048 \(in place, no re-create\)$/m);
    expect(r.out).toContain('create 0, update 1, replace 0, keep 2, destroy 0');
  });
});

describe('targets', () => {
  it('deploy takes its target from the spec like provision (lab-3: qemu-local)', async () => {
    const r = await kubedos('deploy', 'lab-3.yaml', '--review');
    expect(r.err).not.toContain('--target is required');
    expect(r.out).toMatch(/^review of lab-3 on qemu-local/);
  });
  it('no target anywhere: says so and how to set one, resolves nothing', async () => {
    // deploy runs the completeness preflight first: reference-16 with its sources declared.
    for (const cmd of [['provision', 'reference-16.yaml', '--dry-run'], ['deploy', 'reference-16-sourced.yaml']]) {
      const r = await kubedos(...cmd);
      expect(r.code).toBe(2);
      expect(r.err).toContain('no target is set');
      expect(r.err).toContain('hint: set spec.substrate.proxmox.host');
      expect(r.err + r.out).not.toMatch(/proxmox:\/\/proxmox|does not resolve/);
    }
  });
  it('a qemu-local dry run of reference-16 names the spec settings it ignores', async () => {
    const r = await kubedos('provision', 'reference-16.yaml', '--dry-run', '--target', 'qemu-local');
    expect(r.code).toBe(0);
    expect(r.err).toContain('note: qemu-local: VLAN tags on NICs (10) are not applied');
    expect(r.err).toContain('note: qemu-local: storage pools (fast-zfs) are not used');
  });
  it('and warns with the numbers when the plan does not fit this machine (host facts injected)', () => {
    const spec = parseSpec(TEMPLATES['reference-16'].text).spec!;
    const err: string[] = [];
    const io = { ...capture().io, err: (t: string) => err.push(t) } as CliIo;
    const facts: HostFacts = { memoryBytes: 23 * 1024 ** 3, availableMemoryBytes: 20 * 1024 ** 3, cores: 2, diskPath: '/', diskFreeBytes: 500 * 1024 ** 3, kvmDevice: true, tools: {}, files: {} };
    printQemuLocalNotes(spec, plan(spec), ws, io, { dryRun: true, facts });
    expect(err).toContain('warning: memory: reference-16 (16 VMs) needs 114 GiB of guest memory; this machine has 23 GiB in all (the VMs will not all run)\n  hint: pick a smaller template (lab-3 or solo-1) or lower memoryMiB in the spec');
  });
});

describe('status --json', () => {
  it('is JSON in the ClusterStatus shape when no deploy is recorded', async () => {
    const r = await kubedos('status', 'lab-3.yaml', '--json');
    expect(r.code).toBe(1);
    const st = ClusterStatus.parse(JSON.parse(r.out));
    expect(st).toMatchObject({ cluster: 'lab-3', deployed: false, finished: false, stages: {}, failures: [] });
    expect(st.journal).toBe(join(ws, 'clusters/lab-3/journal.jsonl'));
  });
});
