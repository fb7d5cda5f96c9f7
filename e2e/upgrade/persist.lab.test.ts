// kubedos-persist (payload/upgrade/) against real ext4 file systems on loop devices, each "boot" in
// a mount namespace of its own (unshare -m), so nothing it binds outlives the boot or touches the
// host: slot A's first boot (artifact N) copies what the node learned to the data partition and
// binds it; slot B (N+1's own files) on the same data runs first boot again from N+1's payload
// (its payload.json, node.json, hostname are N+1's) with the node's learned files bound; back on
// A, N's; a data partition of the older script (the whole /etc/kubedos on it) is bound by its
// learned parts only; reruns change nothing; a data partition too small, read-only or missing
// leaves the slot's files untouched and says why. First boot is a shell stand-in (its artifact
// steps), not kubedos-firstboot.sh. Root only (losetup, mount); ~5 s.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SCRIPT = resolve(__dirname, '../../payload/upgrade/kubedos-persist');
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const N = '0.1.0';
const N1 = '0.1.1';
/** What the node learned, as every boot after slot A's first must show it (whatever the slot). */
const LEARNED = ['machine-id: ' + MACHINE_ID, 'pin: pin-of-the-hub', 'token: none', 'node key: node-key-of-w-1', 'etcd cert: etcd-cert-of-w-1', 'plane key: wg1-key-of-w-1', 'host key: host-key-of-w-1'];
const work = mkdtempSync(join(tmpdir(), 'kd-persist-'));
const M = join(work, 'm');
const devices: string[] = [];
const dev: Record<'slots' | 'data' | 'old' | 'small' | 'ro', string> = { slots: '', data: '', old: '', small: '', ro: '' };

function loopFs(name: string, mib: number, extra: string[] = []): string {
  const img = join(work, `${name}.img`);
  execFileSync('truncate', ['-s', `${mib}M`, img]);
  execFileSync('mkfs.ext4', ['-q', '-F', ...extra, '-L', name, img]);
  const d = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
  devices.push(d);
  return d;
}

// A slot's artifact files (install-payload.sh's, the image's): payload.json with the version, the
// role's node files, sshd_config; and what kubedos-firstboot.sh derives from them for this node
// (node.json, hostname, 91-kubedos-users.conf, the host keys of ssh-keygen -A when missing),
// run only while its marker is absent, like kubedos-firstboot.service.
const SLOT_FUNCTIONS = `
artifact() {
  mkdir -p $1/etc/kubedos/upgrade $1/usr/lib/kubedos/nodes $1/etc/ssh/sshd_config.d
  printf '{"artifactVersion": "%s", "sshAllowUsers": ["ops-%s"]}\\n' $2 $2 > $1/etc/kubedos/payload.json
  printf '{"node":{"name":"w-1"},"rev":"%s"}\\n' $2 > $1/usr/lib/kubedos/nodes/w-1.json
  echo ssh > $1/etc/kubedos/upgrade/gate-units
  echo sshd-config-$2 > $1/etc/ssh/sshd_config
}
firstboot() {
  [ -e $1/var/lib/kubedos/firstboot-complete ] && return 0
  v=$(sed -n 's/.*"rev":"\\([^"]*\\)".*/\\1/p' $1/usr/lib/kubedos/nodes/w-1.json)
  install -m 0644 $1/usr/lib/kubedos/nodes/w-1.json $1/etc/kubedos/node.json
  echo w-1-$v > $1/etc/hostname
  echo "AllowUsers $(sed -n 's/.*"sshAllowUsers": \\["\\([^"]*\\)".*/\\1/p' $1/etc/kubedos/payload.json)" > $1/etc/ssh/sshd_config.d/91-kubedos-users.conf
  [ -e $1/etc/ssh/ssh_host_ed25519_key ] && [ "$(cat $1/etc/ssh/ssh_host_ed25519_key)" != host-key-of-the-image ] || { echo host-key-of-w-1 > $1/etc/ssh/ssh_host_ed25519_key; chmod 600 $1/etc/ssh/ssh_host_ed25519_key; }
  echo '{"node":"w-1"}' > $1/var/lib/kubedos/firstboot-complete
  echo "firstboot ran: node w-1 from $v"
}
`;

/** The files a boot shows: the artifact's (the slot's) and the learned ones (data's). */
function show(root: string): string {
  return [
    `echo "payload.json: $(sed -n 's/.*"artifactVersion": "\\([^"]*\\)".*/\\1/p' ${root}/etc/kubedos/payload.json)"`,
    `echo "node.json: $(sed -n 's/.*"name":"\\([^"]*\\)".*"rev":"\\([^"]*\\)".*/\\1 \\2/p' ${root}/etc/kubedos/node.json)"`,
    `echo "hostname: $(cat ${root}/etc/hostname)"`,
    `echo "users.conf: $(cat ${root}/etc/ssh/sshd_config.d/91-kubedos-users.conf)"`,
    `echo "sshd_config: $(cat ${root}/etc/ssh/sshd_config)"`,
    `echo "machine-id: $(cat ${root}/etc/machine-id)"`,
    `echo "pin: $(cat ${root}/etc/kubedos/enroll/hub.pin)"`,
    `echo "token: $(cat ${root}/etc/kubedos/enroll/token 2>/dev/null || echo none)"`,
    `echo "node key: $(cat ${root}/etc/kubedos/identity/node.key)"`,
    `echo "etcd cert: $(cat ${root}/etc/kubedos/pki/etcd/client.crt)"`,
    `echo "plane key: $(cat ${root}/etc/wireguard/wg1.key)"`,
    `echo "host key: $(cat ${root}/etc/ssh/ssh_host_ed25519_key)"`,
    `echo "log: $(cat ${root}/var/log/boot.log 2>/dev/null | head -n 1)"`,
  ].join('\n');
}

/** One boot: a bash in a private mount namespace with the slots' file system mounted at $M. */
function boot(body: string): { status: number | null; out: string } {
  const script = ['set -eu', `M=${M}`, `P=${SCRIPT}`, 'export KUBEDOS_SLOT=A', SLOT_FUNCTIONS, `mkdir -p $M && mount ${dev.slots} $M`, body].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('this lab test needs root (losetup, mount, unshare -m); run it as root like CI does');
  dev.slots = loopFs('slots', 64);
  dev.data = loopFs('kubedos-data', 32);
  dev.old = loopFs('old-data', 16);
  dev.small = loopFs('small', 4, ['-b', '1024', '-N', '128']);
  dev.ro = loopFs('ro', 8);
});

afterAll(() => {
  for (const d of devices) spawnSync('losetup', ['-d', d]);
  rmSync(work, { recursive: true, force: true });
});

describe('kubedos-persist: the node keeps what it learned across root slots', () => {
  it("slot A's first boot (N) copies what the node learned to data (owners, modes, xattrs kept), binds it, records the slot; a rerun changes nothing", () => {
    const r = boot(`
A=$M/a; mkdir -p $A/etc/kubedos/enroll $A/etc/ssh $A/var/log $A/var/lib/kubedos $A/var/lib/etcd/member
artifact $A ${N}
echo token-of-the-image > $A/etc/kubedos/enroll/token; chown 123:456 $A/etc/kubedos/enroll/token; chmod 600 $A/etc/kubedos/enroll/token
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.kubedos", b"w-1")' $A/etc/kubedos/enroll/token
echo ${MACHINE_ID} > $A/etc/machine-id
echo boot-1 > $A/var/log/boot.log
echo etcd-of-w-1 > $A/var/lib/etcd/member/db
mount ${dev.data} $A/var/lib/kubedos
KUBEDOS_ROOT=$A $P early
firstboot $A
KUBEDOS_ROOT=$A $P late
T=$A/var/lib/kubedos/persist/etc/kubedos/enroll/token
echo "token on data: $(cat $T) $(stat -c '%u:%g %a' $T) $(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.kubedos").decode())' $T)"
# what the node learns after both runs: enrollment uses its token, converge issues certificates
echo pin-of-the-hub > $A/etc/kubedos/enroll/hub.pin; rm $A/etc/kubedos/enroll/token
mkdir -p $A/etc/kubedos/identity; echo node-key-of-w-1 > $A/etc/kubedos/identity/node.key
mkdir -p $A/etc/kubedos/pki/etcd; echo etcd-cert-of-w-1 > $A/etc/kubedos/pki/etcd/client.crt
echo wg1-key-of-w-1 > $A/etc/wireguard/wg1.key
findmnt -rn -o TARGET | grep "^$A/" | sort > /tmp/kd-persist-mounts-1.$$
echo '--- rerun'
KUBEDOS_ROOT=$A $P early; KUBEDOS_ROOT=$A $P late
echo '--- end'
findmnt -rn -o TARGET | grep "^$A/" | sort | diff /tmp/kd-persist-mounts-1.$$ - && echo 'mounts unchanged'
rm -f /tmp/kd-persist-mounts-1.$$
D=$A/var/lib/kubedos/persist
echo "pin on data: $(cat $D/etc/kubedos/enroll/hub.pin) $(ls $D/etc/kubedos/enroll | tr '\\n' ' ')|"
echo "host key on data: $(cat $D/etc/ssh/ssh_host_ed25519_key) $(stat -c %a $D/etc/ssh/ssh_host_ed25519_key)"
echo "plane key on data: $(cat $D/etc/wireguard/wg1.key)"
echo "etcd on data: $(cat $D/var/lib/etcd/member/db)"
echo "artifact files on data: $(ls $D/etc/kubedos | tr '\\n' ' ')|$(ls $D/etc/ssh | grep -vc ssh_host_)"
echo "slot record: $(cat $A/var/lib/kubedos/slots/A.personalised | cut -c1-8) $(sha256sum < $A/etc/kubedos/payload.json | cut -c1-8)"
ls -a $D/etc $D/etc/kubedos $D/var/lib | grep -c kubedos-persist-tmp || true
`);
    expect(r.status, r.out).toBe(0);
    for (const p of ['/etc/machine-id', '/etc/kubedos/enroll', '/etc/kubedos/identity', '/etc/kubedos/pki', '/etc/wireguard', '/var/lib/etcd', '/var/log']) expect(r.out).toContain(`${p}: bound from data`);
    expect(r.out).toContain('kubedos-persist early: /etc/kubedos/enroll: first copy on data');
    expect(r.out).toContain('kubedos-persist late: /etc/ssh/ssh_host_ed25519_key: first copy on data');
    expect(r.out).toContain('kubedos-persist late: slot A personalised for this node (artifact 0.1.0)');
    expect(r.out).not.toContain('not yet personalised');
    const rerun = r.out.slice(r.out.indexOf('--- rerun') + 10, r.out.indexOf('--- end'));
    expect(rerun).toBe('');
    expect(r.out).toContain('mounts unchanged');
    // The image's token was copied with its owner, mode and xattr, then used (removed) through the bind.
    expect(r.out).toContain('token on data: token-of-the-image 123:456 600 w-1');
    expect(r.out).toContain('pin on data: pin-of-the-hub hub.pin |');
    expect(r.out).toContain('host key on data: host-key-of-w-1 600');
    expect(r.out).toContain('plane key on data: wg1-key-of-w-1');
    expect(r.out).toContain('etcd on data: etcd-of-w-1');
    // payload.json, node.json, sshd_config, 91-kubedos-users.conf, hostname … stay in the slot.
    expect(r.out).toMatch(/artifact files on data: (enroll identity pki |enroll pki identity |identity enroll pki )\|0/);
    expect(r.out).toMatch(/slot record: (\w{8}) \1/);
    expect(r.out.trim().endsWith('\n0')).toBe(true);
  });

  it("slot B (N+1's own files) on the same data: first boot again from N+1's payload, the node's learned files bound", () => {
    const r = boot(`
B=$M/b; mkdir -p $B/etc/kubedos/enroll $B/etc/ssh $B/var/lib/kubedos
artifact $B ${N1}
echo token-of-the-image-N+1 > $B/etc/kubedos/enroll/token
: > $B/etc/machine-id
echo host-key-of-the-image > $B/etc/ssh/ssh_host_ed25519_key
mount ${dev.data} $B/var/lib/kubedos
KUBEDOS_ROOT=$B KUBEDOS_SLOT=B $P early
firstboot $B
KUBEDOS_ROOT=$B KUBEDOS_SLOT=B $P late
${show('$B')}
echo boot-2 >> $B/var/log/boot.log
echo etcd-after-N+1 > $B/var/lib/etcd/member/db
echo '--- second boot of B'
`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toContain('first copy');
    expect(r.out).toContain('kubedos-persist early: slot B (artifact 0.1.1) is not yet personalised for this node: kubedos-firstboot runs again');
    expect(r.out).toContain('firstboot ran: node w-1 from 0.1.1');
    expect(r.out).toContain('kubedos-persist late: slot B personalised for this node (artifact 0.1.1)');
    for (const line of ['payload.json: 0.1.1', 'node.json: w-1 0.1.1', 'hostname: w-1-0.1.1', 'users.conf: AllowUsers ops-0.1.1', 'sshd_config: sshd-config-0.1.1', ...LEARNED, 'log: boot-1']) {
      expect(r.out).toContain(line);
    }
    // Below the binds: slot B keeps its own image files, except the machine id written back for PID 1.
    const under = boot(`echo "$(cat $M/b/etc/machine-id) $(cat $M/b/etc/kubedos/enroll/token) $(cat $M/b/etc/ssh/ssh_host_ed25519_key)"
mount ${dev.data} $M/b/var/lib/kubedos; cat $M/b/var/lib/kubedos/persist/var/log/boot.log | tr '\\n' ' '`);
    expect(under.out).toContain(`${MACHINE_ID} token-of-the-image-N+1 host-key-of-the-image`);
    expect(under.out).toContain('boot-1 boot-2');
    // B's next boot: personalised already, first boot does not run again.
    const again = boot(`B=$M/b; mount ${dev.data} $B/var/lib/kubedos
KUBEDOS_ROOT=$B KUBEDOS_SLOT=B $P early; firstboot $B; KUBEDOS_ROOT=$B KUBEDOS_SLOT=B $P late
${show('$B')}`);
    expect(again.status, again.out).toBe(0);
    expect(again.out).not.toContain('personalised');
    expect(again.out).not.toContain('firstboot ran');
    expect(again.out).toContain('payload.json: 0.1.1');
    // B written again with the same build (kubedos-slot-write removes B's record before writing;
    // the slot holds the image's files again): first boot runs on it again.
    const rewritten = boot(`B=$M/b; rm -f $B/etc/kubedos/node.json $B/etc/hostname $B/etc/ssh/sshd_config.d/91-kubedos-users.conf
mount ${dev.data} $B/var/lib/kubedos; rm $B/var/lib/kubedos/slots/B.personalised
KUBEDOS_ROOT=$B KUBEDOS_SLOT=B $P early; firstboot $B; KUBEDOS_ROOT=$B KUBEDOS_SLOT=B $P late
${show('$B')}`);
    expect(rewritten.status, rewritten.out).toBe(0);
    expect(rewritten.out).toContain('slot B (artifact 0.1.1) is not yet personalised');
    for (const line of ['payload.json: 0.1.1', 'node.json: w-1 0.1.1', 'hostname: w-1-0.1.1', ...LEARNED]) expect(rewritten.out).toContain(line);
  });

  it("back to slot A (a rollback): N's payload.json and per-node files, the same learned files (and what B wrote to them)", () => {
    const r = boot(`A=$M/a; mount ${dev.data} $A/var/lib/kubedos
KUBEDOS_ROOT=$A KUBEDOS_SLOT=A $P early; firstboot $A; KUBEDOS_ROOT=$A KUBEDOS_SLOT=A $P late
${show('$A')}
echo "etcd: $(cat $A/var/lib/etcd/member/db)"`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toContain('personalised');
    expect(r.out).not.toContain('firstboot ran');
    for (const line of ['payload.json: 0.1.0', 'node.json: w-1 0.1.0', 'hostname: w-1-0.1.0', 'users.conf: AllowUsers ops-0.1.0', 'sshd_config: sshd-config-0.1.0', ...LEARNED, 'etcd: etcd-after-N+1']) {
      expect(r.out).toContain(line);
    }
  });

  it('a data partition holding the whole /etc/kubedos of the older script: its learned parts bound from it, its artifact files unused and kept', () => {
    const r = boot(`
O=$M/o; mkdir -p $O/etc/kubedos/enroll $O/etc/ssh $O/var/lib/kubedos
artifact $O ${N1}
echo token-of-the-image-N+1 > $O/etc/kubedos/enroll/token
mount ${dev.old} $O/var/lib/kubedos
D=$O/var/lib/kubedos/persist
# what the older kubedos-persist left on a node deployed with it (slot A, N)
mkdir -p $D/etc/kubedos/enroll $D/etc/kubedos/identity $D/etc/kubedos/pki/etcd $D/etc/wireguard $D/etc/ssh
echo '{"artifactVersion": "0.1.0"}' > $D/etc/kubedos/payload.json
echo '{"node":{"name":"w-1"},"rev":"0.1.0"}' > $D/etc/kubedos/node.json
echo pin-of-the-hub > $D/etc/kubedos/enroll/hub.pin
echo node-key-of-w-1 > $D/etc/kubedos/identity/node.key
echo etcd-cert-of-w-1 > $D/etc/kubedos/pki/etcd/client.crt
echo wg1-key-of-w-1 > $D/etc/wireguard/wg1.key
echo host-key-of-w-1 > $D/etc/ssh/ssh_host_ed25519_key
echo w-1-0.1.0 > $D/etc/hostname
echo '{"node":"w-1"}' > $O/var/lib/kubedos/firstboot-complete
KUBEDOS_ROOT=$O KUBEDOS_SLOT=B $P early
firstboot $O
KUBEDOS_ROOT=$O KUBEDOS_SLOT=B $P late
${show('$O')}
echo "old copy kept: $(sed -n 's/.*"artifactVersion": *"\\([^"]*\\)".*/\\1/p' $D/etc/kubedos/payload.json) $(findmnt -rn -M $O/etc/kubedos | wc -l) $(findmnt -rn -M $O/etc/hostname | wc -l)"
`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('kubedos-persist early: data holds a whole /etc/kubedos (an older kubedos-persist): only its enroll/, identity/ and pki/ are bound');
    expect(r.out).toContain('kubedos-persist early: slot B (artifact 0.1.1) is not yet personalised');
    for (const line of ['payload.json: 0.1.1', 'node.json: w-1 0.1.1', 'hostname: w-1-0.1.1', ...LEARNED.filter((l) => !l.startsWith('machine-id'))]) {
      expect(r.out).toContain(line);
    }
    expect(r.out).toContain('old copy kept: 0.1.0 0 0');
  });

  it('a data partition too small for a path leaves it unbound and untouched, says why, and binds the rest', () => {
    const r = boot(`
C=$M/c; mkdir -p $C/etc/kubedos/enroll $C/var/lib/etcd/member $C/var/lib/kubedos
echo token-of-w-2 > $C/etc/kubedos/enroll/token
head -c 8388608 /dev/urandom > $C/var/lib/etcd/member/db
sum=$(sha256sum < $C/var/lib/etcd/member/db)
mount ${dev.small} $C/var/lib/kubedos
rc=0; KUBEDOS_ROOT=$C $P early || rc=$?
echo "rc=$rc"
echo "etcd bound: $(findmnt -rn -M $C/var/lib/etcd | wc -l) enroll bound: $(findmnt -rn -M $C/etc/kubedos/enroll | wc -l)"
[ "$(sha256sum < $C/var/lib/etcd/member/db)" = "$sum" ] && echo 'slot etcd untouched'
echo "on data: $(ls -A $C/var/lib/kubedos/persist/var/lib | tr '\\n' ' ')|"
`);
    expect(r.out).toContain('rc=1');
    expect(r.out).toMatch(/kubedos-persist early: FAILED to copy \S+\/var\/lib\/etcd to the data partition \(.*No space left on device.*\): \/var\/lib\/etcd stays this slot's own, not bound\. Free space on data/);
    expect(r.out).toContain('etcd bound: 0 enroll bound: 1');
    expect(r.out).toContain('slot etcd untouched');
    // No half copy, not even under a temporary name; the directories made empty are bound.
    expect(r.out).toMatch(/on data: (containerd kubelet |kubelet containerd )\|/);
  });

  it('a read-only data partition: nothing copied, every path says why; no data partition at all: refused', () => {
    const r = boot(`
D=$M/d; mkdir -p $D/etc/kubedos/enroll $D/var/lib/kubedos
echo token-of-w-3 > $D/etc/kubedos/enroll/token
mount -o ro ${dev.ro} $D/var/lib/kubedos
rc=0; KUBEDOS_ROOT=$D $P early || rc=$?
echo "rc=$rc token=$(cat $D/etc/kubedos/enroll/token) mounts=$(findmnt -rn -o TARGET | grep -c "^$D/etc")"
umount $D/var/lib/kubedos
rc=0; KUBEDOS_ROOT=$D $P early || rc=$?
echo "unmounted rc=$rc"
`);
    expect(r.out).toMatch(/FAILED to copy \S+\/etc\/kubedos\/enroll to the data partition \(.*Read-only file system.*\)/);
    expect(r.out).toContain('rc=1 token=token-of-w-3 mounts=0');
    expect(r.out).toMatch(/kubedos-persist early: FAILED: \S+\/var\/lib\/kubedos is not mounted \(the data partition/);
    expect(r.out).toContain('unmounted rc=1');
  });
});
