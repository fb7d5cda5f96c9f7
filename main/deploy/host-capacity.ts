// Can this machine run the plan on local QEMU? Host memory, cores and free disk in the
// workspace against the plan's totals; /dev/kvm (and, when asked, a real KVM test boot — the
// device can exist and still fail, LAB-NOTES) or TCG; qemu-system-x86_64, qemu-img, swtpm and
// the OVMF Secure Boot firmware present. Facts are read once (readHostFacts) and judged by a
// pure function (capacityChecks), so the verdicts are testable with any numbers.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import type { CheckItem, PlanTotals } from '../../common/contract/index';
import type { Plan } from '../../common/plan/schema';
import { existingAncestor, freeBytesAt } from '../build/files';
import { findOnPath } from '../exec/find-on-path';
import { toolFor } from '../exec/tools';
import { OVMF_CODE_SECBOOT, OVMF_VARS_MS } from '../substrate/qemu-local';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** Below this much free space the build itself (darksite, golden images) cannot finish. */
export const MIN_FREE_DISK_BYTES = 4 * GiB;

export const QEMU_TOOLS = ['qemu-system-x86_64', 'qemu-img', 'swtpm', 'swtpm_setup'] as const;
export const QEMU_FILES = [
  { path: OVMF_CODE_SECBOOT, package: 'ovmf', purpose: 'UEFI firmware with Secure Boot' },
  { path: OVMF_VARS_MS, package: 'ovmf', purpose: 'UEFI variables with the Microsoft keys enrolled' },
] as const;

export interface HostFacts {
  memoryBytes: number;
  availableMemoryBytes: number;
  cores: number;
  /** The directory whose filesystem was measured (the nearest existing ancestor of the workspace). */
  diskPath: string;
  diskFreeBytes: number;
  kvmDevice: boolean;
  /** Tool name -> absolute path, or undefined when missing. */
  tools: Record<string, string | undefined>;
  files: Record<string, boolean>;
}

/** What the accelerator check found: the spec's wish, and the probe's verdict if one ran or is cached. */
export interface AccelFacts {
  want: 'auto' | 'kvm' | 'tcg';
  probed?: 'kvm' | 'tcg';
  probeError?: string;
}

export function planTotals(plan: Plan): PlanTotals {
  let vcpus = 0;
  let maxVcpus = 0;
  let memoryMiB = 0;
  let diskGiB = 0;
  for (const n of plan.nodes) {
    const cores = n.vm.cpu.cores * n.vm.cpu.sockets;
    vcpus += cores;
    maxVcpus = Math.max(maxVcpus, cores);
    memoryMiB += n.vm.memoryMiB;
    for (const d of n.vm.disks) diskGiB += d.sizeGiB;
  }
  return { cluster: plan.cluster.name, nodes: plan.nodes.length, vcpus, maxVcpus, memoryMiB, diskGiB };
}


export function readHostFacts(workspace: string, env: NodeJS.ProcessEnv): HostFacts {
  const diskPath = existingAncestor(workspace);
  const tools: Record<string, string | undefined> = {};
  for (const name of QEMU_TOOLS) {
    const tool = toolFor(name);
    tools[name] = tool ? findOnPath(tool, env) : undefined;
  }
  return {
    memoryBytes: totalmem(),
    availableMemoryBytes: freemem(),
    cores: availableParallelism(),
    diskPath,
    diskFreeBytes: freeBytesAt(diskPath),
    kvmDevice: existsSync('/dev/kvm'),
    tools,
    files: Object.fromEntries(QEMU_FILES.map((f) => [f.path, existsSync(f.path)])),
  };
}

/** The qemu-local driver caches its KVM test boot here (stateDir/accel-probe.json). */
export function cachedAccelProbe(stateDir: string): 'kvm' | 'tcg' | undefined {
  try {
    const accel = (JSON.parse(readFileSync(join(stateDir, 'accel-probe.json'), 'utf8')) as { accel?: unknown }).accel;
    return accel === 'kvm' ? 'kvm' : typeof accel === 'string' && accel.startsWith('tcg') ? 'tcg' : undefined;
  } catch {
    return undefined;
  }
}

const gib = (bytes: number): string => `${(bytes / GiB).toFixed(bytes >= 10 * GiB ? 0 : 1)} GiB`;

export function capacityChecks(facts: HostFacts, accel: AccelFacts, totals: PlanTotals | undefined): CheckItem[] {
  const checks: CheckItem[] = [];
  for (const name of QEMU_TOOLS) {
    const path = facts.tools[name];
    const pkg = toolFor(name)?.package ?? name;
    checks.push(
      path
        ? { id: `tool:${name}`, label: name, status: 'ok', detail: path, scope: 'target' }
        : { id: `tool:${name}`, label: name, status: 'error', detail: `${name} is not installed (package ${pkg})`, hint: `sudo apt-get install ${pkg} (or scripts/setup-host.sh; kubedos doctor lists everything)`, scope: 'target' },
    );
  }
  for (const f of QEMU_FILES) {
    checks.push(
      facts.files[f.path]
        ? { id: `file:${f.path}`, label: f.path.split('/').pop() ?? f.path, status: 'ok', detail: `${f.path} (${f.purpose})`, scope: 'target' }
        : { id: `file:${f.path}`, label: f.path.split('/').pop() ?? f.path, status: 'error', detail: `${f.path} is missing (${f.purpose})`, hint: `sudo apt-get install ${f.package}`, scope: 'target' },
    );
  }
  checks.push(accelCheck(facts, accel));

  const memTotal = facts.memoryBytes;
  const memAvail = facts.availableMemoryBytes;
  const cores = facts.cores;
  if (!totals) {
    checks.push({ id: 'memory', label: 'memory', status: 'info', detail: `${gib(memTotal)} in all, ${gib(memAvail)} available (no valid spec to compare with)`, scope: 'plan' });
    checks.push({ id: 'cores', label: 'CPU cores', status: 'info', detail: `${cores} cores`, scope: 'plan' });
    checks.push({ id: 'disk', label: 'free disk', status: 'info', detail: `${gib(facts.diskFreeBytes)} free on ${facts.diskPath}`, scope: 'plan' });
    return checks;
  }
  const need = totals.memoryMiB * MiB;
  const who = `${totals.cluster} (${totals.nodes} VM${totals.nodes === 1 ? '' : 's'})`;
  if (need > memTotal) {
    checks.push({ id: 'memory', label: 'memory', status: 'error', detail: `${who} needs ${gib(need)} of guest memory; this machine has ${gib(memTotal)} in all`, hint: 'pick a smaller template (lab-3 or solo-1) or lower memoryMiB in the spec', scope: 'plan' });
  } else if (need > memAvail) {
    checks.push({ id: 'memory', label: 'memory', status: 'warn', detail: `${who} needs ${gib(need)}; only ${gib(memAvail)} of ${gib(memTotal)} is available now`, hint: 'stop other VMs or programs before deploying, or the last VMs will not start', scope: 'plan' });
  } else {
    checks.push({ id: 'memory', label: 'memory', status: 'ok', detail: `${who} needs ${gib(need)}; ${gib(memAvail)} of ${gib(memTotal)} available`, scope: 'plan' });
  }
  if (totals.maxVcpus > cores) {
    checks.push({ id: 'cores', label: 'CPU cores', status: 'warn', detail: `a VM has ${totals.maxVcpus} vCPUs but this machine has ${cores} cores; it runs, more slowly`, hint: 'lower cpu in the spec for a faster local lab', scope: 'plan' });
  } else if (totals.vcpus > cores) {
    checks.push({ id: 'cores', label: 'CPU cores', status: 'warn', detail: `${totals.vcpus} vCPUs on ${cores} cores: overcommitted, boots and converge take longer`, scope: 'plan' });
  } else {
    checks.push({ id: 'cores', label: 'CPU cores', status: 'ok', detail: `${totals.vcpus} vCPUs on ${cores} cores`, scope: 'plan' });
  }
  const virtual = totals.diskGiB * GiB;
  if (facts.diskFreeBytes < MIN_FREE_DISK_BYTES) {
    checks.push({ id: 'disk', label: 'free disk', status: 'error', detail: `${gib(facts.diskFreeBytes)} free on ${facts.diskPath}; the build alone needs about ${gib(MIN_FREE_DISK_BYTES)}`, hint: `free space on ${facts.diskPath} or point $KUBEDOS_WORKSPACE at a larger disk`, scope: 'plan' });
  } else if (facts.diskFreeBytes < virtual) {
    checks.push({ id: 'disk', label: 'free disk', status: 'warn', detail: `${gib(facts.diskFreeBytes)} free on ${facts.diskPath}; the VMs' disks may grow to ${gib(virtual)} (thin qcow2 overlays: they use only what the guests write)`, scope: 'plan' });
  } else {
    checks.push({ id: 'disk', label: 'free disk', status: 'ok', detail: `${gib(facts.diskFreeBytes)} free on ${facts.diskPath}; VM disks up to ${gib(virtual)} (thin)`, scope: 'plan' });
  }
  return checks;
}

function accelCheck(facts: HostFacts, accel: AccelFacts): CheckItem {
  const base = { id: 'accel', label: 'acceleration', scope: 'target' as const };
  if (accel.want === 'tcg') return { ...base, status: 'info', detail: 'TCG: the spec asks for accel: tcg (slower, works everywhere)' };
  if (!facts.kvmDevice) {
    return accel.want === 'kvm'
      ? { ...base, status: 'error', detail: 'the spec asks for accel: kvm but /dev/kvm does not exist', hint: 'enable virtualisation (kvm module, nested virtualisation in a VM) or use accel: auto' }
      : { ...base, status: 'warn', detail: 'no /dev/kvm: VMs run under TCG (boots take tens of seconds)' };
  }
  if (accel.probeError) return { ...base, status: accel.want === 'kvm' ? 'error' : 'warn', detail: `KVM test boot: ${accel.probeError}` };
  if (accel.probed === 'kvm') return { ...base, status: 'ok', detail: 'KVM: a test boot under /dev/kvm worked' };
  if (accel.probed === 'tcg') {
    return accel.want === 'kvm'
      ? { ...base, status: 'error', detail: 'the spec asks for accel: kvm but a test boot under KVM failed', hint: 'use accel: auto or tcg' }
      : { ...base, status: 'warn', detail: '/dev/kvm exists but a test boot under KVM failed: TCG will be used (boots take tens of seconds)' };
  }
  return { ...base, status: 'info', detail: '/dev/kvm exists, not yet proven: the first provision runs a short KVM test boot and falls back to TCG if it fails', action: 'probe-accel' };
}
