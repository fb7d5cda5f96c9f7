// The deploy wizard's requests through the shared dispatch path: malformed payloads rejected,
// paths confined, ~/.ssh/config hosts listed, a Proxmox-like SSH server (ssh2's Server on
// 127.0.0.1, answering hostname/pvesh/pvesm/qm config) for the host-key decision — unknown,
// accepted into known_hosts, known, changed — and the inventory; qemu-local capacity with
// injected host numbers; review decisions from real inventories; deploy.run streaming and cancel.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { Connection, Server as SshServer } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeployReview, DeployTargets, TargetCheck } from '../../common/contract/index';
import { decodeEnvelope } from '../../common/contract/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { templateWithSources, toYaml } from '../../common/testing/specs';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import type { DeployOptions } from '../stages/index';
import { QemuLocalDriver } from '../substrate/qemu-local';
import { dispatch } from './dispatch';
import type { HostFacts } from '../deploy/host-capacity';
import { capacityChecks, QEMU_FILES, QEMU_TOOLS } from '../deploy/host-capacity';
import type { WorkbenchOptions } from './workbench';
import { createWorkbench } from './workbench';

const { Server, utils } = ssh2;

const dir = mkdtempSync(join(tmpdir(), 'kubedos-deploy-ipc-'));
const home = join(dir, 'home');
const specs = join(dir, 'specs');
const engine = join(dir, 'engine');
mkdirSync(join(home, '.ssh'), { recursive: true });
mkdirSync(specs);
writeFileSync(join(dir, 'outside.yaml'), TEMPLATES['lab-3'].text);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GiB = 1024 ** 3;
const LAB3 = TEMPLATES['lab-3'].text;
// With sources declared: the deploy preflight refuses reference-16 alone (completeness).
const REF16 = toYaml(templateWithSources('reference-16'));
const lab3Plan: Plan = plan(parseSpec(LAB3).spec!);

function bigHost(workspace: string): HostFacts {
  return {
    memoryBytes: 64 * GiB,
    availableMemoryBytes: 60 * GiB,
    cores: 16,
    diskPath: workspace,
    diskFreeBytes: 500 * GiB,
    kvmDevice: false,
    tools: Object.fromEntries(QEMU_TOOLS.map((t) => [t, `/usr/bin/${t}`])),
    files: Object.fromEntries(QEMU_FILES.map((f) => [f.path, true])),
  };
}

function workbench(extra: Partial<WorkbenchOptions> = {}) {
  return createWorkbench({
    transport: 'websocket',
    workspace: specs,
    emit: () => {},
    home,
    env: { KUBEDOS_WORKSPACE: engine, PATH: process.env.PATH },
    deploy: { hostFacts: bigHost, readyTimeoutMs: 5000 },
    ...extra,
  });
}

async function call<T>(wb: ReturnType<typeof workbench>, channel: string, payload: unknown): Promise<T> {
  return decodeEnvelope(await dispatch(wb.handlers, channel, payload)) as T;
}

describe('deploy requests: validation', () => {
  const wb = workbench();
  it('rejects malformed payloads before any handler runs', async () => {
    for (const [channel, payload] of [
      ['deploy.targets', { extra: 1 }],
      ['deploy.checkTarget', {}],
      ['deploy.checkTarget', { target: { kind: 'ssh', host: 'x' } }],
      ['deploy.checkTarget', { target: { kind: 'proxmox' } }],
      ['deploy.checkTarget', { target: { kind: 'proxmox', host: '-oProxyCommand=touch /tmp/pwned' } }],
      ['deploy.checkTarget', { target: { kind: 'proxmox', host: 'root@pve:22' } }],
      ['deploy.checkTarget', { target: { kind: 'proxmox', host: 'a b' } }],
      ['deploy.checkTarget', { target: { kind: 'qemu-local', host: 'x' } }],
      ['deploy.checkTarget', { target: { kind: 'qemu-local' }, text: 5 }],
      ['deploy.acceptHostKey', { target: { kind: 'proxmox', host: 'pve' }, fingerprint: 'MD5:aa:bb' }],
      ['deploy.acceptHostKey', { target: { kind: 'proxmox', host: 'pve' }, fingerprint: `SHA256:${'A'.repeat(42)}` }],
      ['deploy.acceptHostKey', { target: { kind: 'proxmox', host: 'pve' } }],
      ['deploy.review', { target: { kind: 'qemu-local' } }],
      ['deploy.run', { target: { kind: 'qemu-local' }, text: LAB3 }],
      ['deploy.run', { target: { kind: 'qemu-local' }, text: LAB3, allowDestroy: 'yes' }],
      ['deploy.run', { target: { kind: 'qemu-local' }, text: LAB3, allowDestroy: false, path: 'a\u0000.yaml' }],
      ['deploy.run', { target: { kind: 'qemu-local' }, text: LAB3, allowDestroy: false, extra: true }],
    ] as const) {
      const env = await dispatch(wb.handlers, channel, payload);
      expect('error' in env, `${channel} ${JSON.stringify(payload)}`).toBe(true);
      if ('error' in env) expect(env.error.code, `${channel} ${JSON.stringify(payload)}`).toBe('contract.invalid-payload');
    }
  });
  it('refuses a host key accept for qemu-local and a deploy of an invalid spec, with what to do', async () => {
    await expect(call(wb, 'deploy.acceptHostKey', { target: { kind: 'qemu-local' }, fingerprint: `SHA256:${'A'.repeat(43)}` })).rejects.toThrow(/no SSH host key/);
    await expect(call(wb, 'deploy.review', { target: { kind: 'qemu-local' }, text: 'apiVersion: nope\n' })).rejects.toMatchObject({ code: 'spec.invalid', hint: expect.stringContaining('Spec view') });
    await expect(call(wb, 'deploy.run', { target: { kind: 'qemu-local' }, text: 'kind: Cluster\n', allowDestroy: false })).rejects.toThrow(/error\(s\)/);
  });
  it('confines the spec path of deploy.run like spec.open', async () => {
    for (const path of [join(dir, 'outside.yaml'), '../outside.yaml', '/etc/passwd', 'notes.txt']) {
      const env = await dispatch(wb.handlers, 'deploy.run', { target: { kind: 'qemu-local' }, text: LAB3, allowDestroy: false, path });
      expect('error' in env, path).toBe(true);
      if ('error' in env) expect(env.error.code).toBe('spec.access-denied');
    }
  });
});

describe('deploy.targets: Host entries of ~/.ssh/config', () => {
  it('lists concrete hosts resolved like ssh would, skips patterns, reports a missing config', async () => {
    const h = join(dir, 'home-targets');
    mkdirSync(join(h, '.ssh'), { recursive: true });
    const wb = workbench({ home: h });
    const none = await call<DeployTargets>(wb, 'deploy.targets', {});
    expect(none).toMatchObject({ sshConfigExists: false, hosts: [], sshConfigPath: join(h, '.ssh/config') });
    writeFileSync(
      join(h, '.ssh/config'),
      ['Host pve1 pve-lab', '  HostName 10.20.0.5', '  User root', 'Host *.internal !bastion', '  User ops', 'Host jumpy', '  HostName 10.9.0.1', '  ProxyJump admin@bastion:2222', 'Host broken', '  Port 99999', 'Host *', '  Port 2200', ''].join('\n'),
    );
    const listed = await call<DeployTargets>(wb, 'deploy.targets', {});
    expect(listed.sshConfigExists).toBe(true);
    expect(listed.hosts.map((x) => x.alias)).toEqual(['jumpy', 'pve-lab', 'pve1']);
    expect(listed.hosts.find((x) => x.alias === 'pve1')).toMatchObject({ hostName: '10.20.0.5', user: 'root', port: 2200 });
    expect(listed.hosts.find((x) => x.alias === 'jumpy')?.jumps).toEqual(['admin@bastion:2222']);
    expect(listed.problems.join('\n')).toMatch(/broken.*Port/);
  });
});

describe('deploy.checkTarget: qemu-local capacity', () => {
  it('shows shortfalls of the plan against the host, and missing tools as blocking', async () => {
    const small = (ws: string): HostFacts => ({ ...bigHost(ws), memoryBytes: 8 * GiB, availableMemoryBytes: 6 * GiB, cores: 2, diskFreeBytes: 3 * GiB, tools: { ...bigHost(ws).tools, swtpm: undefined } });
    const wb = workbench({ deploy: { hostFacts: small } });
    const r = await call<TargetCheck>(wb, 'deploy.checkTarget', { target: { kind: 'qemu-local' }, text: REF16 });
    const by = (id: string) => r.checks.find((c) => c.id === id);
    expect(r.plan).toMatchObject({ cluster: 'reference-16', nodes: 16, memoryMiB: 116736 });
    expect(by('memory')).toMatchObject({ status: 'error', scope: 'plan' });
    expect(by('memory')?.detail).toMatch(/needs 114 GiB.*8\.0 GiB in all/);
    expect(by('cores')?.status).toBe('warn');
    expect(by('disk')).toMatchObject({ status: 'error' });
    expect(by('tool:swtpm')).toMatchObject({ status: 'error', scope: 'target', hint: expect.stringContaining('apt-get install swtpm') });
    expect(by('accel')).toMatchObject({ status: 'warn', detail: expect.stringContaining('no /dev/kvm') });
    expect(r.ready).toBe(false);
  });
  it('is ready on a host that has what lab-3 needs, and lists the VMs already there', async () => {
    const wb = workbench();
    const r = await call<TargetCheck>(wb, 'deploy.checkTarget', { target: { kind: 'qemu-local' }, text: LAB3 });
    expect(r.ready).toBe(true);
    expect(r.checks.filter((c) => c.status === 'error')).toEqual([]);
    expect(r.checks.find((c) => c.id === 'memory')).toMatchObject({ status: 'ok', detail: expect.stringContaining('lab-3 (3 VMs) needs 4.5 GiB') });
    expect(r.inventory).toMatchObject({ node: 'local', vms: [] });
  });
  it('judges acceleration: /dev/kvm unproven offers the test boot; a failed test boot is TCG, or an error when the spec insists on KVM', () => {
    const facts = { ...bigHost('/w'), kvmDevice: true };
    const accel = (a: Parameters<typeof capacityChecks>[1]) => capacityChecks(facts, a, undefined).find((c) => c.id === 'accel');
    expect(accel({ want: 'auto' })).toMatchObject({ status: 'info', action: 'probe-accel' });
    expect(accel({ want: 'auto', probed: 'kvm' })).toMatchObject({ status: 'ok' });
    expect(accel({ want: 'auto', probed: 'tcg' })).toMatchObject({ status: 'warn', detail: expect.stringContaining('TCG will be used') });
    expect(accel({ want: 'kvm', probed: 'tcg' })).toMatchObject({ status: 'error' });
    expect(accel({ want: 'tcg' })).toMatchObject({ status: 'info', detail: expect.stringContaining('accel: tcg') });
  });
  it('without a valid spec reports the host alone', async () => {
    const r = await call<TargetCheck>(workbench(), 'deploy.checkTarget', { target: { kind: 'qemu-local' }, text: 'nope: 1\n' });
    expect(r.plan).toBeUndefined();
    expect(r.checks.find((c) => c.id === 'memory')).toMatchObject({ status: 'info', detail: expect.stringContaining('64 GiB in all') });
  });
});

describe('deploy.review: qemu-local decisions from the VMs in the workspace', () => {
  it('create / keep / update / destroy per node, destroy needs allowDestroy, foreign VMIDs block', async () => {
    const env = { KUBEDOS_WORKSPACE: join(dir, 'engine-review'), PATH: process.env.PATH };
    const wb = workbench({ env });
    const fresh = await call<DeployReview>(wb, 'deploy.review', { target: { kind: 'qemu-local' }, text: LAB3 });
    expect(fresh.decisions.map((d) => [d.node, d.action])).toEqual([
      ['master', 'create'],
      ['cp-1', 'create'],
      ['w-1', 'create'],
    ]);
    expect(fresh).toMatchObject({ cluster: 'lab-3', needsAllowDestroy: false, previousPlan: false, workspace: join(env.KUBEDOS_WORKSPACE, 'clusters/lab-3') });
    const vms = join(env.KUBEDOS_WORKSPACE, 'clusters/lab-3/vms/vms');
    const record = (vmid: number, shape: Plan['nodes'][number]['vm'], config = QemuLocalDriver.configOf(shape, undefined)) => {
      mkdirSync(join(vms, String(vmid)), { recursive: true });
      writeFileSync(join(vms, String(vmid), 'vm.json'), JSON.stringify({ shape, config }));
    };
    const [master, cp1, w1] = lab3Plan.nodes as [Plan['nodes'][number], Plan['nodes'][number], Plan['nodes'][number]];
    record(master.vmid, master.vm);
    record(cp1.vmid, cp1.vm, { ...QemuLocalDriver.configOf(cp1.vm, undefined), memory: '1024' });
    record(3050, { ...w1.vm, vmid: 3050, name: 'w-old' });
    const r = await call<DeployReview>(wb, 'deploy.review', { target: { kind: 'qemu-local' }, text: LAB3 });
    const by = (n: string) => r.decisions.find((d) => d.node === n);
    expect(by('master')).toMatchObject({ action: 'keep', destructive: false });
    expect(by('cp-1')).toMatchObject({ action: 'update', reasons: ['memory: 1024 -> 2048'], destructive: false });
    expect(by('w-1')).toMatchObject({ action: 'create' });
    expect(by('w-old')).toMatchObject({ action: 'destroy', destructive: true, reasons: ['not in the plan'] });
    expect(r.summary).toEqual({ create: 1, keep: 1, update: 1, replace: 0, destroy: 1 });
    expect(r.needsAllowDestroy).toBe(true);
    expect(r.blocked).toBeUndefined();
    // Someone else's VM on w-1's VMID: blocked, whatever allowDestroy says.
    record(w1.vmid, { ...w1.vm, name: 'not-ours', tags: ['other'] });
    const b = await call<DeployReview>(wb, 'deploy.review', { target: { kind: 'qemu-local' }, text: LAB3 });
    expect(b.blocked).toMatchObject({ code: 'vmid-taken', message: expect.stringContaining(`${w1.vmid} "not-ours"`) });
    expect(b.decisions.find((d) => d.node === 'w-1')).toMatchObject({ blocked: true });
  });
  it('compares with the plan of the last deploy in the workspace', async () => {
    const env = { KUBEDOS_WORKSPACE: join(dir, 'engine-prev'), PATH: process.env.PATH };
    const prevSpec = LAB3.replace('memoryMiB: 1536', 'memoryMiB: 1024');
    const ws = join(env.KUBEDOS_WORKSPACE, 'clusters/lab-3');
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, 'plan.json'), JSON.stringify(plan(parseSpec(prevSpec).spec!)));
    const r = await call<DeployReview>(workbench({ env }), 'deploy.review', { target: { kind: 'qemu-local' }, text: LAB3 });
    expect(r.previousPlan).toBe(true);
    expect(r.planChanges.join('\n')).toMatch(/w-1: update \(memory 1024 -> 1536 \(in place/);
  });
});

// ---------------------------------------------------------------- a Proxmox-like SSH server

function keygen(path: string): { pub: string; fingerprint: string } {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', path]);
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' }).split(' ')[1] as string;
  return { pub: readFileSync(`${path}.pub`, 'utf8'), fingerprint };
}

interface FakeVm {
  vmid: number;
  name: string;
  tags: string;
  config: Record<string, string>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function fakeProxmox(hostKeyPath: string, clientPub: string, port: number, vms: () => FakeVm[]): Promise<SshServer> {
  const allowed = utils.parseKey(clientPub);
  if (allowed instanceof Error) throw allowed;
  const answer = (command: string): [string, number] => {
    if (command === 'hostname') return ['pve-fake\n', 0];
    if (command.startsWith('pvesh get /cluster/resources')) return [JSON.stringify(vms().map((v) => ({ type: 'qemu', vmid: v.vmid, name: v.name, tags: v.tags, status: 'stopped', node: 'pve-fake' }))), 0];
    if (command.startsWith('pvesm status')) return ['Name Type Status Total Used Available %\nlocal dir active 104857600 1048576 103809024 1.00%\n', 0];
    const m = /^qm config (\d+)$/.exec(command);
    const vm = m ? vms().find((v) => v.vmid === Number(m[1])) : undefined;
    if (vm) return [`${Object.entries(vm.config).map(([k, v]) => `${k}: ${v}`).join('\n')}\n`, 0];
    return [`unexpected command: ${command}\n`, 2];
  };
  const server = new Server({ hostKeys: [readFileSync(hostKeyPath)] }, (client: Connection) => {
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowed.getPublicSSH())) return ctx.reject(['publickey']);
      if (ctx.signature && ctx.blob && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec();
          const [out, code] = answer(info.command);
          if (code === 0) stream.write(out);
          else stream.stderr.write(out);
          stream.exit(code);
          stream.end();
        });
      });
    });
    client.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

describe('Proxmox target over SSH: host key decision, inventory, review', () => {
  const keys = join(dir, 'keys');
  mkdirSync(keys);
  const hostKey = keygen(join(keys, 'host'));
  const otherHostKey = keygen(join(keys, 'host2'));
  const client = keygen(join(keys, 'client'));
  const knownHosts = join(home, '.ssh/known_hosts');
  const target = { kind: 'proxmox', host: 'pve-fake' } as const;
  let port: number;
  let server: SshServer;
  let vms: FakeVm[] = [];
  beforeAll(async () => {
    port = await freePort();
    server = await fakeProxmox(join(keys, 'host'), client.pub, port, () => vms);
    writeFileSync(join(home, '.ssh/config'), `Host pve-fake\n  HostName 127.0.0.1\n  Port ${port}\n  User root\n  IdentityFile ${join(keys, 'client')}\nHost pve-closed\n  HostName 127.0.0.1\n  Port ${await freePort()}\n  User root\n  IdentityFile ${join(keys, 'client')}\n`);
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const wb = workbench();

  it('reports a refused connection with what to check', async () => {
    const t0 = Date.now();
    const r = await call<TargetCheck>(wb, 'deploy.checkTarget', { target: { kind: 'proxmox', host: 'pve-closed' } });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.ready).toBe(false);
    expect(r.error).toMatchObject({ code: 'unreachable', message: expect.stringContaining('connection refused'), hint: expect.stringContaining('Port') });
    expect(r.checks.find((c) => c.id === 'connection')?.status).toBe('error');
  });
  it('shows an unknown host key with its SHA256 fingerprint and trusts nothing by itself', async () => {
    const r = await call<TargetCheck>(wb, 'deploy.checkTarget', { target, text: LAB3 });
    expect(r.ready).toBe(false);
    expect(r.hostKey).toMatchObject({ status: 'unknown', host: '127.0.0.1', port, keyType: 'ssh-ed25519', fingerprint: hostKey.fingerprint });
    expect(r.ssh).toMatchObject({ alias: 'pve-fake', hostName: '127.0.0.1', port, user: 'root' });
    expect(existsSync(knownHosts)).toBe(false);
  });
  it('refuses to trust a fingerprint the host does not present', async () => {
    const r = await call<TargetCheck>(wb, 'deploy.acceptHostKey', { target, fingerprint: otherHostKey.fingerprint, text: LAB3 });
    expect(r.ready).toBe(false);
    expect(r.error?.code).toBe('host-key-mismatch');
    expect(r.checks.find((c) => c.id === 'host-key')?.status).toBe('error');
    expect(existsSync(knownHosts)).toBe(false);
  });
  it('accepting the shown fingerprint stores it in known_hosts and reads the inventory', async () => {
    const r = await call<TargetCheck>(wb, 'deploy.acceptHostKey', { target, fingerprint: hostKey.fingerprint, text: LAB3 });
    expect(r.ready).toBe(true);
    expect(r.hostKey).toMatchObject({ status: 'accepted', fingerprint: hostKey.fingerprint });
    expect(readFileSync(knownHosts, 'utf8')).toBe(`[127.0.0.1]:${port} ${hostKey.pub.split(' ').slice(0, 2).join(' ')}\n`);
    expect(r.inventory).toMatchObject({ node: 'pve-fake', storages: [{ name: 'local', type: 'dir' }] });
    expect(r.checks.find((c) => c.id === 'storage:local')?.status).toBe('ok');
    const again = await call<TargetCheck>(wb, 'deploy.checkTarget', { target, text: LAB3 });
    expect(again).toMatchObject({ ready: true, hostKey: { status: 'known' } });
  });
  it('reviews the plan against the host: foreign VMIDs block, VMs not in the plan are destroyed only with allowDestroy', async () => {
    const [master] = lab3Plan.nodes as [Plan['nodes'][number]];
    vms = [
      { vmid: master.vmid, name: 'someone-elses', tags: 'prod', config: { name: 'someone-elses' } },
      { vmid: 3090, name: 'old-worker', tags: 'cluster-lab-3;kubedos', config: { name: 'old-worker', memory: '1024' } },
    ];
    const r = await call<DeployReview>(wb, 'deploy.review', { target, text: LAB3 });
    expect(r).toMatchObject({ target: 'proxmox://pve-fake', node: 'pve-fake', needsAllowDestroy: true, blocked: { code: 'vmid-taken' } });
    expect(r.decisions.find((d) => d.node === 'master')).toMatchObject({ blocked: true });
    expect(r.decisions.find((d) => d.vmid === 3090)).toMatchObject({ action: 'destroy', destructive: true });
    vms = [];
  });
  it('refuses a host whose key changed, with the reason and how to fix it', async () => {
    await new Promise<void>((r) => server.close(() => r()));
    server = await fakeProxmox(join(keys, 'host2'), client.pub, port, () => vms);
    const r = await call<TargetCheck>(wb, 'deploy.checkTarget', { target, text: LAB3 });
    expect(r.ready).toBe(false);
    expect(r.hostKey?.status).toBe('changed');
    expect(r.error).toMatchObject({ code: 'host-key-changed', message: expect.stringContaining(otherHostKey.fingerprint), hint: expect.stringContaining('ssh-keygen -R') });
    await expect(call(wb, 'deploy.review', { target, text: LAB3 })).rejects.toThrow(/CHANGED/);
  });
});

describe('deploy.run: the deploy DAG through the runner, events streamed, cancel', () => {
  it('starts deployPipeline with the target and workspace, refuses a second deploy of the same cluster, cancels', async () => {
    const events: PipelineEvent[] = [];
    let given: DeployOptions | undefined;
    let closed = 0;
    const env = { KUBEDOS_WORKSPACE: join(dir, 'engine-run'), PATH: process.env.PATH };
    const wb = workbench({
      env,
      emit: (_c, payload) => events.push(...(payload as PipelineEvent[])),
      pipelines: {
        deploy: (_source, options) => {
          given = options;
          const slow: StageDefinition = {
            name: 'build',
            description: 'waits until aborted',
            needs: [],
            rerun: 'safe-rerun',
            run: (ctx) =>
              new Promise<void>((_resolve, reject) => {
                ctx.node('master', 'running', 'building');
                ctx.log('building', { node: 'master' });
                ctx.signal.addEventListener('abort', () => reject(new StageError('aborted')), { once: true });
              }),
          };
          return {
            stages: [slow],
            close: async () => {
              closed++;
            },
          };
        },
      },
    });
    writeFileSync(join(specs, 'lab.yaml'), LAB3);
    const started = await call<{ runId: string; stages: string[]; workspace: string }>(wb, 'deploy.run', { target: { kind: 'qemu-local' }, text: LAB3, path: 'lab.yaml', allowDestroy: false });
    const ws = join(env.KUBEDOS_WORKSPACE, 'clusters/lab-3');
    expect(started).toMatchObject({ stages: ['build'], workspace: ws });
    expect(given).toMatchObject({ target: { kind: 'qemu-local' }, workspace: ws, planPath: join(ws, 'plan.json') });
    await expect(call(wb, 'deploy.run', { target: { kind: 'qemu-local' }, text: LAB3, allowDestroy: false })).rejects.toMatchObject({ code: 'deploy.busy' });
    await expect.poll(() => events.some((e) => e.type === 'node' && e.node === 'master' && e.state === 'running')).toBe(true);
    expect(events[0]).toMatchObject({ type: 'run', pipeline: 'deploy' });
    expect(await call(wb, 'pipeline.cancel', { runId: started.runId })).toEqual({ cancelled: true });
    await expect.poll(() => events.find((e) => e.type === 'done'), { timeout: 10_000 }).toBeTruthy();
    // The journal of the run is in the cluster's workspace.
    expect(readFileSync(join(ws, 'journal.jsonl'), 'utf8')).toContain(started.runId);
    // The run's substrate connection was released, and the cluster can be deployed again.
    await expect.poll(() => closed).toBe(1);
    expect(given).toMatchObject({ specPath: join(specs, 'lab.yaml'), knownHostsPath: join(home, '.ssh/known_hosts') });
    await wb.dispose();
  });
});
