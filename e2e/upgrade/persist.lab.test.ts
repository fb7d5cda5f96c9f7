// kubedos-persist (payload/upgrade/) against real ext4 file systems on loop devices, each "boot" in
// a mount namespace of its own (unshare -m), so nothing it binds outlives the boot or touches the
// host: slot A's first boot copies the node's identity and state to the data partition and binds
// it; slot B (fresh files from N+1) on the same data boots with the node's files, not its own;
// reruns change nothing; a data partition too small, read-only or missing leaves the slot's files
// untouched and says why. Root only (losetup, mount); ~5 s.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPT = resolve(__dirname, '../../payload/upgrade/kubedos-persist');
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const work = mkdtempSync(join(tmpdir(), 'kd-persist-'));
const M = join(work, 'm');
const devices: string[] = [];
const dev: Record<'slots' | 'data' | 'small' | 'ro', string> = { slots: '', data: '', small: '', ro: '' };

function loopFs(name: string, mib: number, extra: string[] = []): string {
  const img = join(work, `${name}.img`);
  execFileSync('truncate', ['-s', `${mib}M`, img]);
  execFileSync('mkfs.ext4', ['-q', '-F', ...extra, '-L', name, img]);
  const d = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
  devices.push(d);
  return d;
}

/** One boot: a bash in a private mount namespace with the slots' file system mounted at $M. */
function boot(body: string): { status: number | null; out: string } {
  const script = ['set -eu', `M=${M}`, `P=${SCRIPT}`, `mkdir -p $M && mount ${dev.slots} $M`, body].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('this lab test needs root (losetup, mount, unshare -m); run it as root like CI does');
  dev.slots = loopFs('slots', 64);
  dev.data = loopFs('kubedos-data', 32);
  dev.small = loopFs('small', 4, ['-b', '1024', '-N', '128']);
  dev.ro = loopFs('ro', 8);
});

afterAll(() => {
  for (const d of devices) spawnSync('losetup', ['-d', d]);
  rmSync(work, { recursive: true, force: true });
});

describe('kubedos-persist: the node keeps what it learned across root slots', () => {
  it("slot A's first boot copies identity and state to data (owners, modes, xattrs kept) and binds it; a rerun changes nothing", () => {
    const r = boot(`
A=$M/a; mkdir -p $A/etc/kubedos $A/etc/ssh $A/var/log $A/var/lib/kubedos $A/var/lib/etcd/member
echo '{"node":"w-1"}' > $A/etc/kubedos/node.json; chown 123:456 $A/etc/kubedos/node.json; chmod 640 $A/etc/kubedos/node.json
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.kubedos", b"w-1")' $A/etc/kubedos/node.json
echo ${MACHINE_ID} > $A/etc/machine-id
echo boot-1 > $A/var/log/boot.log
echo etcd-of-w-1 > $A/var/lib/etcd/member/db
echo sshd-config-N > $A/etc/ssh/sshd_config
mount ${dev.data} $A/var/lib/kubedos
KUBEDOS_ROOT=$A $P early
# kubedos-firstboot: the host key and the hostname
echo host-key-of-w-1 > $A/etc/ssh/ssh_host_ed25519_key; chmod 600 $A/etc/ssh/ssh_host_ed25519_key
echo w-1 > $A/etc/hostname
KUBEDOS_ROOT=$A $P late
# the backplane writes a plane key after both runs
echo wg1-key-of-w-1 > $A/etc/wireguard/wg1.key
findmnt -rn -o TARGET | grep "^$A/" | sort > /tmp/kd-persist-mounts-1.$$
echo '--- rerun'
KUBEDOS_ROOT=$A $P early; KUBEDOS_ROOT=$A $P late
echo '--- end'
findmnt -rn -o TARGET | grep "^$A/" | sort | diff /tmp/kd-persist-mounts-1.$$ - && echo 'mounts unchanged'
rm -f /tmp/kd-persist-mounts-1.$$
D=$A/var/lib/kubedos/persist
echo "node.json on data: $(cat $D/etc/kubedos/node.json) $(stat -c '%u:%g %a' $D/etc/kubedos/node.json) $(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.kubedos").decode())' $D/etc/kubedos/node.json)"
echo "host key on data: $(cat $D/etc/ssh/ssh_host_ed25519_key) $(stat -c %a $D/etc/ssh/ssh_host_ed25519_key)"
echo "plane key on data: $(cat $D/etc/wireguard/wg1.key)"
echo "etcd on data: $(cat $D/var/lib/etcd/member/db)"
echo "sshd_config on data: $(ls $D/etc/ssh/sshd_config 2>&1 | grep -c 'No such')"
ls -a $D/etc $D/var/lib | grep -c kubedos-persist-tmp || true
`);
    expect(r.status, r.out).toBe(0);
    for (const p of ['/etc/machine-id', '/etc/kubedos', '/etc/wireguard', '/var/lib/etcd', '/var/log']) expect(r.out).toContain(`${p}: bound from data`);
    expect(r.out).toContain('kubedos-persist late: /etc/ssh/ssh_host_ed25519_key: first copy on data');
    expect(r.out).toContain('kubedos-persist late: /etc/hostname: bound from data');
    const rerun = r.out.slice(r.out.indexOf('--- rerun') + 10, r.out.indexOf('--- end'));
    expect(rerun).toBe('');
    expect(r.out).toContain('mounts unchanged');
    expect(r.out).toContain('node.json on data: {"node":"w-1"} 123:456 640 w-1');
    expect(r.out).toContain('host key on data: host-key-of-w-1 600');
    expect(r.out).toContain('plane key on data: wg1-key-of-w-1');
    expect(r.out).toContain('etcd on data: etcd-of-w-1');
    // The artifact's sshd_config is not the node's: it stays in the slot.
    expect(r.out).toContain('sshd_config on data: 1');
    expect(r.out.trim().endsWith('\n0')).toBe(true);
  });

  it("slot B (N+1's own files) on the same data boots with the node's identity and state, and the artifact's config", () => {
    const r = boot(`
B=$M/b; mkdir -p $B/etc/kubedos $B/etc/ssh $B/var/lib/kubedos
echo '{"node":"fresh-from-N+1"}' > $B/etc/kubedos/node.json
: > $B/etc/machine-id
echo host-key-of-the-image > $B/etc/ssh/ssh_host_ed25519_key
echo sshd-config-N+1 > $B/etc/ssh/sshd_config
echo debian > $B/etc/hostname
mount ${dev.data} $B/var/lib/kubedos
KUBEDOS_ROOT=$B $P early
KUBEDOS_ROOT=$B $P late
echo "node.json: $(cat $B/etc/kubedos/node.json)"
echo "host key: $(cat $B/etc/ssh/ssh_host_ed25519_key)"
echo "plane key: $(cat $B/etc/wireguard/wg1.key)"
echo "etcd: $(cat $B/var/lib/etcd/member/db)"
echo "machine-id: $(cat $B/etc/machine-id)"
echo "hostname: $(cat $B/etc/hostname)"
echo "log: $(cat $B/var/log/boot.log)"
echo "sshd_config: $(cat $B/etc/ssh/sshd_config)"
echo boot-2 >> $B/var/log/boot.log
`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toContain('first copy');
    for (const line of ['node.json: {"node":"w-1"}', 'host key: host-key-of-w-1', 'plane key: wg1-key-of-w-1', 'etcd: etcd-of-w-1', `machine-id: ${MACHINE_ID}`, 'hostname: w-1', 'log: boot-1', 'sshd_config: sshd-config-N+1']) {
      expect(r.out).toContain(line);
    }
    // Below the binds: slot B keeps its own files, except the machine id written back for PID 1.
    const under = boot(`echo "$(cat $M/b/etc/machine-id) $(cat $M/b/etc/kubedos/node.json) $(cat $M/b/etc/ssh/ssh_host_ed25519_key)"
mount ${dev.data} $M/b/var/lib/kubedos; cat $M/b/var/lib/kubedos/persist/var/log/boot.log | tr '\\n' ' '`);
    expect(under.out).toContain(`${MACHINE_ID} {"node":"fresh-from-N+1"} host-key-of-the-image`);
    expect(under.out).toContain('boot-1 boot-2');
  });

  it('a data partition too small for a path leaves it unbound and untouched, says why, and binds the rest', () => {
    const r = boot(`
C=$M/c; mkdir -p $C/etc/kubedos $C/var/lib/etcd/member $C/var/lib/kubedos
echo '{"node":"w-2"}' > $C/etc/kubedos/node.json
head -c 8388608 /dev/urandom > $C/var/lib/etcd/member/db
sum=$(sha256sum < $C/var/lib/etcd/member/db)
mount ${dev.small} $C/var/lib/kubedos
rc=0; KUBEDOS_ROOT=$C $P early || rc=$?
echo "rc=$rc"
echo "etcd bound: $(findmnt -rn -M $C/var/lib/etcd | wc -l) kubedos bound: $(findmnt -rn -M $C/etc/kubedos | wc -l)"
[ "$(sha256sum < $C/var/lib/etcd/member/db)" = "$sum" ] && echo 'slot etcd untouched'
echo "on data: $(ls -A $C/var/lib/kubedos/persist/var/lib | tr '\\n' ' ')|"
`);
    expect(r.out).toContain('rc=1');
    expect(r.out).toMatch(/kubedos-persist early: FAILED to copy \S+\/var\/lib\/etcd to the data partition \(.*No space left on device.*\): \/var\/lib\/etcd stays this slot's own, not bound\. Free space on data/);
    expect(r.out).toContain('etcd bound: 0 kubedos bound: 1');
    expect(r.out).toContain('slot etcd untouched');
    // No half copy, not even under a temporary name; the directories made empty are bound.
    expect(r.out).toMatch(/on data: (containerd kubelet |kubelet containerd )\|/);
  });

  it('a read-only data partition: nothing copied, every path says why; no data partition at all: refused', () => {
    const r = boot(`
D=$M/d; mkdir -p $D/etc/kubedos $D/var/lib/kubedos
echo '{"node":"w-3"}' > $D/etc/kubedos/node.json
mount -o ro ${dev.ro} $D/var/lib/kubedos
rc=0; KUBEDOS_ROOT=$D $P early || rc=$?
echo "rc=$rc node.json=$(cat $D/etc/kubedos/node.json) mounts=$(findmnt -rn -o TARGET | grep -c "^$D/etc")"
umount $D/var/lib/kubedos
rc=0; KUBEDOS_ROOT=$D $P early || rc=$?
echo "unmounted rc=$rc"
`);
    expect(r.out).toMatch(/FAILED to copy \S+\/etc\/kubedos to the data partition \(.*Read-only file system.*\)/);
    expect(r.out).toContain('rc=1 node.json={"node":"w-3"} mounts=0');
    expect(r.out).toMatch(/kubedos-persist early: FAILED: \S+\/var\/lib\/kubedos is not mounted \(the data partition/);
    expect(r.out).toContain('unmounted rc=1');
  });
});
