// The host tools the engine may run, which Debian package brings each, and what it is for.
// The runner refuses anything not listed; `kubedos doctor` reports on every entry.

export interface HostTool {
  /** Program name as found on PATH. */
  name: string;
  package: string;
  purpose: string;
  /** Group shown by doctor. */
  area: 'build' | 'hypervisor' | 'network' | 'converge' | 'browser' | 'base' | 'substrate';
  /** Arguments that print a version (doctor runs them). */
  versionArgs?: string[];
  /** Absolute path when the program is not on PATH. */
  path?: string;
}

export const HOST_TOOLS: readonly HostTool[] = [
  { name: 'qemu-system-x86_64', package: 'qemu-system-x86', purpose: 'local VMs and boot tests', area: 'hypervisor', versionArgs: ['--version'] },
  { name: 'qemu-img', package: 'qemu-utils', purpose: 'qcow2 images and overlays', area: 'hypervisor', versionArgs: ['--version'] },
  { name: 'swtpm', package: 'swtpm', purpose: 'TPM 2.0 for local VMs', area: 'hypervisor', versionArgs: ['--version'] },
  { name: 'swtpm_setup', package: 'swtpm-tools', purpose: 'initialise TPM state', area: 'hypervisor', versionArgs: ['--version'] },
  { name: 'wg', package: 'wireguard-tools', purpose: 'WireGuard keys and plane checks', area: 'network', versionArgs: ['--version'] },
  { name: 'wireguard-go', package: 'wireguard-go', purpose: 'userspace WireGuard for lab namespaces', area: 'network', versionArgs: ['--version'] },
  { name: 'nft', package: 'nftables', purpose: 'render checks and lab firewalls', area: 'network', versionArgs: ['--version'] },
  { name: 'ip', package: 'iproute2', purpose: 'lab network namespaces', area: 'network', versionArgs: ['-V'] },
  { name: 'unshare', package: 'util-linux', purpose: 'lab node namespaces', area: 'network', versionArgs: ['--version'] },
  { name: 'nsenter', package: 'util-linux', purpose: 'lab node namespaces', area: 'network', versionArgs: ['--version'] },
  { name: 'ping', package: 'iputils-ping', purpose: 'reachability checks', area: 'network', versionArgs: ['-V'] },
  { name: 'nc', package: 'netcat-openbsd', purpose: 'flow checks', area: 'network' },
  { name: 'socat', package: 'socat', purpose: 'guest-agent and QMP sockets', area: 'network', versionArgs: ['-V'] },
  { name: 'xorriso', package: 'xorriso', purpose: 'hybrid installer ISOs', area: 'build', versionArgs: ['-version'] },
  { name: 'mkfs.fat', package: 'dosfstools', purpose: 'EFI system partitions', area: 'build', versionArgs: ['--help'] },
  { name: 'mcopy', package: 'mtools', purpose: 'fill FAT images without mounting', area: 'build', versionArgs: ['-V'] },
  { name: 'mmd', package: 'mtools', purpose: 'fill FAT images without mounting', area: 'build', versionArgs: ['-V'] },
  { name: 'mkfs.ext4', package: 'e2fsprogs', purpose: 'reproducible root filesystems', area: 'build', versionArgs: ['-V'] },
  { name: 'dumpe2fs', package: 'e2fsprogs', purpose: 'which inodes a new ext4 image uses', area: 'build', versionArgs: ['-V'] },
  { name: 'debugfs', package: 'e2fsprogs', purpose: 'pin inode times of ext4 images (reproducible bytes)', area: 'build', versionArgs: ['-V'] },
  { name: 'sfdisk', package: 'fdisk', purpose: 'GPT layout of golden images', area: 'build', versionArgs: ['--version'] },
  { name: 'cpio', package: 'cpio', purpose: 'preseed injection into the installer initrd', area: 'build', versionArgs: ['--version'] },
  { name: 'gzip', package: 'gzip', purpose: 'initrd and repository compression', area: 'base', versionArgs: ['--version'] },
  { name: 'xz', package: 'xz-utils', purpose: 'upstream apt sources: read Packages.xz indexes', area: 'build', versionArgs: ['--version'] },
  { name: 'debootstrap', package: 'debootstrap', purpose: 'golden image root filesystems', area: 'build', versionArgs: ['--version'] },
  { name: 'apt-get', package: 'apt', purpose: 'darksite dependency closure downloads', area: 'build', versionArgs: ['--version'] },
  { name: 'apt-cache', package: 'apt', purpose: 'darksite lock: hashes of resolved packages', area: 'build', versionArgs: ['--version'] },
  { name: 'apt-ftparchive', package: 'apt-utils', purpose: 'darksite Packages and Release files', area: 'build', versionArgs: ['--version'] },
  { name: 'gpg', package: 'gnupg', purpose: 'darksite InRelease signatures', area: 'build', versionArgs: ['--version'] },
  { name: 'gpgv', package: 'gpgv', purpose: 'verify darksite signatures', area: 'build', versionArgs: ['--version'] },
  { name: 'gpgconf', package: 'gpgconf', purpose: 'stop the gpg-agent of the darksite key home', area: 'build', versionArgs: ['--version'] },
  { name: 'dpkg-query', package: 'dpkg', purpose: 'host tool versions recorded in the SBOM and build cache keys', area: 'build', versionArgs: ['--version'] },
  { name: 'dpkg', package: 'dpkg', purpose: 'darksite lists: Debian version relations (dpkg --compare-versions)', area: 'build', versionArgs: ['--version'] },
  { name: 'git', package: 'git', purpose: 'source commit recorded in build provenance', area: 'base', versionArgs: ['--version'] },
  { name: 'chroot', package: 'coreutils', purpose: 'finish golden image root filesystems', area: 'build', versionArgs: ['--version'] },
  { name: 'dpkg-deb', package: 'dpkg', purpose: 'inspect and unpack .debs', area: 'build', versionArgs: ['--version'] },
  { name: 'dd', package: 'coreutils', purpose: 'place filesystems into disk images', area: 'base', versionArgs: ['--version'] },
  { name: 'lsblk', package: 'util-linux', purpose: 'USB sticks: list block devices (kubedos usb list)', area: 'base', versionArgs: ['--version'] },
  { name: 'blockdev', package: 'util-linux', purpose: 'USB sticks: device size (BLKGETSIZE64)', area: 'base', versionArgs: ['--version'], path: '/usr/sbin/blockdev' },
  { name: 'losetup', package: 'mount', purpose: 'USB bench: loop devices standing in for sticks', area: 'base', versionArgs: ['--version'], path: '/usr/sbin/losetup' },
  { name: 'tar', package: 'tar', purpose: 'reproducible payload archives', area: 'base', versionArgs: ['--version'] },
  { name: 'sha256sum', package: 'coreutils', purpose: 'remote hash checks', area: 'base', versionArgs: ['--version'] },
  { name: 'ssh', package: 'openssh-client', purpose: 'comparison bench (one process per command)', area: 'substrate', versionArgs: ['-V'] },
  { name: 'ssh-keygen', package: 'openssh-client', purpose: 'test keys and host keys', area: 'substrate', versionArgs: ['-V'] },
  { name: 'sshd', package: 'openssh-server', purpose: 'Proxmox stand-in and lab nodes', area: 'substrate', path: '/usr/sbin/sshd', versionArgs: ['-V'] },
  { name: 'ansible-playbook', package: 'ansible-core', purpose: 'converge roles over wg1', area: 'converge', versionArgs: ['--version'] },
  { name: 'ansible-lint', package: 'ansible-lint', purpose: 'lint the payload roles', area: 'converge', versionArgs: ['--version'] },
  { name: 'etcd', package: 'etcd-server', purpose: 'etcd members in lab tests', area: 'converge', versionArgs: ['--version'] },
  { name: 'etcdctl', package: 'etcd-client', purpose: 'etcd health checks', area: 'converge', versionArgs: ['version'] },
  { name: 'shellcheck', package: 'shellcheck', purpose: 'lint payload shell', area: 'build', versionArgs: ['--version'] },
  { name: 'age', package: 'age', purpose: 'interop checks for secrets at rest', area: 'base', versionArgs: ['--version'] },
  { name: 'python3', package: 'python3', purpose: 'on-node payload (enrollment agent and hub)', area: 'base', versionArgs: ['--version'] },
  { name: 'chromium', package: 'chromium', purpose: 'browser e2e tests of the workbench', area: 'browser', path: '/usr/bin/chromium', versionArgs: ['--version'] },
  // Programs the engine runs that are not host packages of their own.
  { name: 'bash', package: 'bash', purpose: 'payload scripts in lab nodes', area: 'base', versionArgs: ['--version'] },
  { name: 'sh', package: 'dash', purpose: 'payload scripts in lab nodes', area: 'base' },
  { name: 'env', package: 'coreutils', purpose: 'run with an explicit environment', area: 'base' },
  { name: 'true', package: 'coreutils', purpose: 'probes', area: 'base' },
  { name: 'node', package: 'nodejs', purpose: 'the engine itself (child processes in tests)', area: 'base', versionArgs: ['--version'] },
  { name: 'kill', package: 'procps', purpose: 'stop lab daemons by PID', area: 'base' },
];

const byName = new Map(HOST_TOOLS.map((t) => [t.name, t]));
const extra = new Set<string>();

export function isKnownTool(name: string): boolean {
  return byName.has(name) || extra.has(name);
}

export function toolFor(name: string): HostTool | undefined {
  return byName.get(name);
}

/**
 * Admit a program that lives inside the project (a payload script, a test fixture) by its
 * basename. Kept explicit so the allowlist stays auditable.
 */
export function allowProjectProgram(name: string): void {
  extra.add(name);
}
