// Before anything runs on local QEMU: what of the spec qemu-local does not apply
// (common/plan/qemu-local-fit.ts) and whether this machine can hold the plan (the host capacity
// checks the workbench's review shows, main/deploy/host-capacity.ts), as warnings on stderr.
import type { Plan } from '../../common/plan/schema';
import { qemuLocalIgnores } from '../../common/plan/qemu-local-fit';
import type { ClusterSpec } from '../../common/spec/schema';
import type { HostFacts } from '../deploy/host-capacity';
import { capacityChecks, planTotals, readHostFacts } from '../deploy/host-capacity';
import type { CliIo } from './command';

/** Prints the notes; returns how many capacity checks failed outright (status error). */
export function printQemuLocalNotes(spec: ClusterSpec, p: Plan, workspace: string, io: CliIo, opts: { dryRun?: boolean; facts?: HostFacts } = {}): number {
  const facts = opts.facts ?? readHostFacts(workspace, io.env);
  for (const line of qemuLocalIgnores(spec)) io.err(`note: qemu-local: ${line}`);
  const checks = capacityChecks(facts, { want: spec.spec.substrate.qemu?.accel ?? 'auto' }, planTotals(p)).filter((c) => c.scope === 'plan' && (c.status === 'warn' || c.status === 'error'));
  for (const c of checks) {
    const level = c.status === 'error' && !opts.dryRun ? 'error' : 'warning';
    const stop = c.status === 'error' && opts.dryRun ? ' (the VMs will not all run)' : '';
    io.err(`${level}: ${c.label}: ${c.detail}${stop}${c.hint ? `\n  hint: ${c.hint}` : ''}`);
  }
  return checks.filter((c) => c.status === 'error').length;
}
