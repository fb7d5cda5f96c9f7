import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import type { VmShape } from '../../common/plan/schema';
import { changesInPlace } from '../../common/plan/in-place';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import * as qm from './qm';
import { remoteCommand } from './shell';
import { hostileString, prng } from '../../e2e/fixtures/hostile';
import { SubstrateInputError } from './validate';

const parsed = parseSpec(TEMPLATES['reference-16'].text);
if (!parsed.spec) throw new Error('reference-16 does not parse');
const BASE = plan(parsed.spec).nodes[0]?.vm as VmShape;
const shape = (): VmShape => structuredClone(BASE);

const words = (argv: string[]): string[] => execFileSync('/bin/sh', ['-c', remoteCommand(['printf', '%s\\0', ...argv])], { encoding: 'utf8' }).split('\u0000').slice(0, -1);

describe('qm command builder', () => {
  it('builds the seed shape: q35, OVMF + Secure Boot keys, TPM 2.0, agent, virtio, tags', () => {
    const s = shape();
    const argv = qm.qmCreate(s, { kind: 'iso', volid: 'local:iso/kubedos-master.iso' });
    const opt = (k: string): string | undefined => argv[argv.indexOf(`--${k}`) + 1];
    expect(argv.slice(0, 3)).toEqual(['qm', 'create', String(s.vmid)]);
    expect(opt('machine')).toBe('q35');
    expect(opt('bios')).toBe('ovmf');
    expect(opt('efidisk0')).toBe(`${s.efidisk.pool}:1,efitype=4m,pre-enrolled-keys=1`);
    expect(opt('tpmstate0')).toBe(`${s.tpm.pool}:1,version=v2.0`);
    expect(opt('agent')).toBe('enabled=1,fstrim_cloned_disks=1');
    expect(opt('net0')).toMatch(/^virtio=[0-9A-F:]{17},bridge=\w+,firewall=0/);
    expect(opt('ide2')).toBe('local:iso/kubedos-master.iso,media=cdrom');
    expect(opt('boot')).toBe('order=scsi0;ide2');
    expect(opt('tags')).toBe([...s.tags].sort().join(';'));
    // The ';' in tags and boot order must survive the remote shell as one word each.
    expect(words(argv)).toEqual(argv);
  });

  it('imports a disk image in the create call itself', () => {
    const s = shape();
    const argv = qm.qmCreate(s, { kind: 'disk-image', volid: 'local:import/golden.qcow2' });
    expect(argv[argv.indexOf('--scsi0') + 1]).toBe(`${s.disks[0]?.pool}:0,import-from=local:import/golden.qcow2,discard=on,iothread=1`);
    expect(argv).not.toContain('--ide2');
    expect(argv[argv.indexOf('--boot') + 1]).toBe('order=scsi0');
  });

  it('fuzz: hostile names, storages, bridges and tags are rejected before a command exists', () => {
    const rand = prng(7);
    const fields: ((s: VmShape, v: string) => void)[] = [
      (s, v) => (s.name = v),
      (s, v) => (s.efidisk.pool = v),
      (s, v) => (s.tpm.pool = v),
      (s, v) => ((s.disks[0] as VmShape['disks'][number]).pool = v),
      (s, v) => ((s.nics[0] as VmShape['nics'][number]).bridge = v),
      (s, v) => ((s.nics[0] as VmShape['nics'][number]).mac = v),
      (s, v) => (s.tags = [...s.tags, v]),
      (s, v) => (s.cpu.type = v),
    ];
    let rejected = 0;
    let accepted = 0;
    for (let i = 0; i < 4000; i++) {
      const s = shape();
      const value = hostileString(rand, 5);
      const field = fields[i % fields.length] as (s: VmShape, v: string) => void;
      field(s, value);
      let argv: string[] | undefined;
      try {
        argv = qm.qmCreate(s, undefined);
      } catch (err) {
        expect(err).toBeInstanceOf(SubstrateInputError);
        rejected++;
        continue;
      }
      accepted++;
      // Whatever was accepted is plain: no shell metacharacter anywhere in the argv.
      for (const w of argv) expect(w).not.toMatch(/['"$`\\|&<>(){}*?[\]~#!\s]/);
      expect(words(argv)).toEqual(argv);
    }
    expect(rejected).toBeGreaterThan(3000);
    expect(accepted).toBeGreaterThan(0);
  });

  it('guest exec passes any argument through the remote shell unchanged', () => {
    const rand = prng(99);
    const argv = Array.from({ length: 200 }, () => hostileString(rand));
    const cmd = qm.qmGuestExec(3000, ['/bin/echo', ...argv], 30);
    expect(words(cmd)).toEqual(cmd);
  });

  it('guest exec with stdin: --pass-stdin 1 before the "--", the guest argv after it untouched', () => {
    expect(qm.qmGuestExec(3000, ['/bin/sh', '-c', 'cat > "$1"', 'x', '/etc/a b'], 300, true)).toEqual(['qm', 'guest', 'exec', '3000', '--timeout', '300', '--pass-stdin', '1', '--', '/bin/sh', '-c', 'cat > "$1"', 'x', '/etc/a b']);
    expect(qm.qmGuestExec(3000, ['/bin/true'], 30)).not.toContain('--pass-stdin');
  });

  it('validates VMIDs, volume ids and paths', () => {
    expect(() => qm.qmStart(99)).toThrow(SubstrateInputError);
    expect(() => qm.qmStart(1.5)).toThrow(SubstrateInputError);
    expect(() => qm.pvesmPath("local:iso/x.iso;reboot")).toThrow(SubstrateInputError);
    expect(() => qm.pvesmPath('local:iso/../../etc/passwd.iso')).toThrow(SubstrateInputError);
    expect(() => qm.pveshFileRead('pve', 3000, 'relative')).toThrow(SubstrateInputError);
    expect(qm.qmDestroy(3000)).toEqual(['qm', 'destroy', '3000', '--purge', '1', '--destroy-unreferenced-disks', '1']);
  });

  it('compares a Proxmox .conf with the shape', () => {
    const s = shape();
    const disk = s.disks[0] as VmShape['disks'][number];
    const nic = s.nics[0] as VmShape['nics'][number];
    const conf: Record<string, string> = {
      agent: '1,fstrim_cloned_disks=1',
      balloon: '0',
      bios: 'ovmf',
      boot: 'order=scsi0',
      cores: String(s.cpu.cores),
      cpu: s.cpu.type,
      efidisk0: `${s.efidisk.pool}:vm-${s.vmid}-disk-0,efitype=4m,pre-enrolled-keys=1,size=4M`,
      machine: 'q35',
      memory: String(s.memoryMiB),
      name: s.name,
      net0: `virtio=${nic.mac},bridge=${nic.bridge},firewall=0${nic.vlan ? `,tag=${nic.vlan}` : ''}`,
      onboot: '1',
      ostype: 'l26',
      rng0: 'source=/dev/urandom',
      scsi0: `${disk.pool}:vm-${s.vmid}-disk-1,discard=on,iothread=1,size=${disk.sizeGiB}G`,
      scsihw: 'virtio-scsi-single',
      serial0: 'socket',
      sockets: '1',
      tags: s.tags.join(';'),
      tpmstate0: `${s.tpm.pool}:vm-${s.vmid}-disk-2,size=4M,version=v2.0`,
      vga: 'serial0',
    };
    for (let i = 1; i < s.disks.length; i++) {
      const d = s.disks[i] as VmShape['disks'][number];
      conf[`scsi${d.index}`] = `${d.pool}:vm-${s.vmid}-disk-${3 + i},discard=on,iothread=1,size=${d.sizeGiB}G`;
    }
    for (let i = 1; i < s.nics.length; i++) {
      const n = s.nics[i] as VmShape['nics'][number];
      conf[`net${n.index}`] = `virtio=${n.mac},bridge=${n.bridge},firewall=0${n.vlan ? `,tag=${n.vlan}` : ''}`;
    }
    expect(qm.compareConfig(s, conf)).toEqual([]);
    const drifted = qm.compareConfig(s, { ...conf, memory: '512', efidisk0: conf.efidisk0?.replace('pre-enrolled-keys=1', 'pre-enrolled-keys=0') ?? '' });
    expect(drifted.map((d) => [d.key, d.settable])).toEqual([
      ['efidisk0', false],
      ['memory', true],
    ]);
  });

  it('qm set accepts exactly the keys the plan diff calls in place (common/plan/in-place.ts)', () => {
    for (const key of ['memory', 'cores', 'cpu', 'tags', 'balloon', 'net0']) {
      expect(changesInPlace(key), key).toBe(true);
      expect(qm.qmSet(100, { [key]: 'x' })).toContain(`--${key}`);
    }
    for (const key of ['sockets', 'scsi0', 'bios', 'efidisk0', 'machine']) {
      expect(changesInPlace(key), key).toBe(false);
      expect(() => qm.qmSet(100, { [key]: 'x' })).toThrow(SubstrateInputError);
    }
  });

  it('reads pvesm status in KiB', () => {
    const st = qm.parsePvesmStatus('Name Type Status Total Used Available %\nlocal dir active 1000 200 800 20.00%\n');
    expect(st).toEqual([{ name: 'local', type: 'dir', active: true, totalBytes: 1024000, usedBytes: 204800, availableBytes: 819200 }]);
  });
});

describe('qm guest exec of a script that spans lines', () => {
  const script = ['set -eu', 'i=0', 'while [ "$i" -lt "$1" ]; do', '  printf "%s:%s\\n" "$0" "$i"', '  i=$((i+1))', 'done', "printf 'it'\\''s %s\\n' \"$2\"", 'exit 3'].join('\n');
  const sh = (argv: readonly string[]) => {
    try {
      return { code: 0, out: execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
    } catch (err) {
      const e = err as { status: number; stdout: string };
      return { code: e.status, out: e.stdout };
    }
  };

  it('goes as one line that the same shell runs to the same output, $0, arguments and exit status', () => {
    const argv = ['sh', '-c', script, 'probe', '2', "a 'quoted' word"];
    const one = qm.singleLineScript(argv);
    expect(one.join(' ')).not.toMatch(/[\n\r]/);
    expect(one.slice(3)).toEqual(argv.slice(3));
    expect(sh(one)).toEqual(sh(argv));
    expect(sh(argv)).toEqual({ code: 3, out: "probe:0\nprobe:1\nit's a 'quoted' word\n" });
    // set -e still ends the script at the first failing command.
    expect(sh(qm.singleLineScript(['sh', '-c', 'set -e\nfalse\necho never']))).toEqual({ code: 1, out: '' });
  });

  it('the converge fingerprint reaches a node through qm over SSH (it was refused for its newlines)', async () => {
    const { fingerprintCommand } = await import('../stages/converge-state');
    expect(() => remoteCommand(fingerprintCommand())).toThrow(/control characters/);
    expect(() => remoteCommand(qm.qmGuestExec(3000, fingerprintCommand(), 120))).not.toThrow();
    // Only the sh -c script form is rewritten; other words with a newline are still refused.
    expect(qm.singleLineScript(['cat', 'a\nb'])).toEqual(['cat', 'a\nb']);
    expect(() => remoteCommand(qm.qmGuestExec(3000, ['cat', 'a\nb'], 120))).toThrow(/control characters/);
  });
});
