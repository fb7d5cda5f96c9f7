// `kubedos deploy SPEC --review`: the same review the wizard shows (main/deploy/service.ts),
// printed as a table. Nothing is created, changed or destroyed.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { DeployReview } from '../../../common/contract/index';
import { renderTable } from '../../../common/text/table';
import { DeployService } from '../../deploy/service';
import type { Target } from '../../target';
import type { CliIo } from '../command';
import { plural } from '../../../common/text/plural';

/** Pure: the review as terminal text (decisions, plan changes, checks, what blocks). */
export function formatReview(r: DeployReview): string {
  const lines: string[] = [];
  lines.push(`review of ${r.cluster} on ${r.target} (node ${r.node}; workspace ${r.workspace})`);
  lines.push(
    renderTable(
      ['NODE', 'VMID', 'ACTION', 'START', 'WHY'],
      r.decisions.map((d) => [d.node, String(d.vmid), d.blocked ? 'BLOCKED' : d.destructive ? `${d.action}!` : d.action, d.start ? 'yes' : '', d.reasons.slice(0, 2).join('; ') + (d.reasons.length > 2 ? ` (+${d.reasons.length - 2})` : '')]),
    ),
  );
  const s = r.summary;
  lines.push(`summary: ${s.create} create, ${s.keep} keep, ${s.update} update, ${s.replace} replace, ${s.destroy} destroy${r.needsAllowDestroy ? ' — destructive: needs --allow-destroy' : ''}`);
  if (r.previousPlan) lines.push(r.planChanges.length ? `against the last deploy's plan: ${plural(r.planChanges.length, 'change')}: ${r.planChanges.slice(0, 5).join('; ')}${r.planChanges.length > 5 ? '; …' : ''}` : "against the last deploy's plan: no change");
  else lines.push('no earlier deploy of this cluster in the workspace');
  const bad = r.checks.filter((c) => c.status === 'error' || c.status === 'warn');
  lines.push(`checks: ${r.checks.length - bad.length} ok${bad.length ? `, ${bad.length} to look at:` : ''}`);
  for (const c of bad.slice(0, 8)) lines.push(`  ${c.status}: ${c.label}: ${c.detail}${c.hint ? ` (${c.hint})` : ''}`);
  if (r.blocked) lines.push(`BLOCKED: ${r.blocked.message}${r.blocked.hint ? `\n  ${r.blocked.hint}` : ''}`);
  return lines.join('\n');
}

export async function reviewDeploy(target: Target, text: string, io: CliIo, paths: { sshConfigPath?: string; knownHostsPath?: string }): Promise<number> {
  const home = io.env.HOME ?? homedir();
  const service = new DeployService({
    home,
    sshConfigPath: paths.sshConfigPath ?? join(home, '.ssh', 'config'),
    knownHostsPath: paths.knownHostsPath ?? join(home, '.ssh', 'known_hosts'),
    env: io.env,
  });
  const r = await service.review(target, text, io.signal);
  io.out(formatReview(r));
  const errors = r.checks.some((c) => c.status === 'error');
  return r.blocked || errors ? 1 : 0;
}
