// A drill report to hand on: the recorded drills of a cluster with a summary per scenario, as
// canonical JSON and as one self-contained HTML page (inline style and inline SVG bars, no script,
// nothing fetched: a Content-Security-Policy of default-src 'none' says so to the browser).
// `kubedos drill SPEC --history --export FILE` and the workbench's Drills view write the same
// bytes. Deterministic: built only from the records (no clock), keys sorted. Pure.
import { canonicalJson, sha256Hex } from '../canonical';
import { plural } from '../text/plural';
import type { DrillRecord } from './timeline';
import { DRILL_PHASES, detectSourceLabel } from './timeline';

export interface ScenarioSummary {
  scenario: string;
  drills: number;
  measured: number;
  passed: number;
  medianMttrMs?: number;
  bestMttrMs?: number;
  worstMttrMs?: number;
  targetMinutes: number;
  /** Median duration of each phase over the measured drills. */
  medianPhaseMs: Partial<Record<(typeof DRILL_PHASES)[number], number>>;
}

export interface DrillReport {
  schema: 'kubedos.drill-report/v1';
  cluster: string;
  /** Period covered: the first and last drill's start (from the records, not from the clock). */
  from?: string;
  to?: string;
  drills: number;
  scenarios: ScenarioSummary[];
  records: DrillRecord[];
  /** sha256 of the canonical JSON of the records, so two reports of the same history compare equal. */
  recordsSha256: string;
}

const median = (xs: readonly number[]): number | undefined => {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : Math.round(((s[m - 1] as number) + (s[m] as number)) / 2);
};

export function drillReport(cluster: string, records: readonly DrillRecord[]): DrillReport {
  const sorted = [...records].sort((a, b) => a.startedAtMs - b.startedAtMs || a.id.localeCompare(b.id));
  const names = [...new Set(sorted.map((r) => r.scenario))].sort();
  const scenarios = names.map((scenario): ScenarioSummary => {
    const rs = sorted.filter((r) => r.scenario === scenario);
    const measured = rs.filter((r) => r.mttrMs !== undefined);
    const mttrs = measured.map((r) => r.mttrMs as number);
    const medianPhaseMs: ScenarioSummary['medianPhaseMs'] = {};
    for (const ph of DRILL_PHASES) {
      const m = median(measured.flatMap((r) => r.phases.filter((p) => p.name === ph && p.state === 'done' && p.durationMs !== undefined).map((p) => p.durationMs as number)));
      if (m !== undefined) medianPhaseMs[ph] = m;
    }
    const med = median(mttrs);
    return {
      scenario,
      drills: rs.length,
      measured: measured.length,
      passed: measured.filter((r) => r.pass).length,
      ...(med !== undefined ? { medianMttrMs: med, bestMttrMs: Math.min(...mttrs), worstMttrMs: Math.max(...mttrs) } : {}),
      targetMinutes: (rs.at(-1) as DrillRecord).goal.minutes,
      medianPhaseMs,
    };
  });
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const from = iso(sorted[0]?.startedAtMs);
  const to = iso(sorted.at(-1)?.startedAtMs);
  return {
    schema: 'kubedos.drill-report/v1',
    cluster,
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    drills: sorted.length,
    scenarios,
    records: sorted,
    recordsSha256: sha256Hex(canonicalJson(sorted)),
  };
}

export function drillReportJson(report: DrillReport): string {
  return `${canonicalJson(report, 2)}\n`;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

export function fmtDuration(ms: number | undefined): string {
  if (ms === undefined) return '—';
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const PHASE_FILL: Record<string, string> = { inject: '#e03131', detect: '#f08c00', fence: '#e8b100', replace: '#1971c2', reintegrate: '#0c8599', healthy: '#2f9e44' };

/** One drill's phases as an inline SVG Gantt row set (no script, no external reference). */
function phaseSvg(r: DrillRecord): string {
  const started = r.phases.filter((p) => p.startedAtMs !== undefined);
  if (!started.length) return '';
  const t0 = Math.min(...started.map((p) => p.startedAtMs as number));
  const span = Math.max(1, ...started.map((p) => (p.endedAtMs ?? (p.startedAtMs as number)) - t0));
  const W = 560;
  const rows = r.phases
    .map((p, i) => {
      const y = i * 18;
      const label = `<text x="0" y="${y + 12}" font-size="11">${esc(p.name)}</text>`;
      if (p.startedAtMs === undefined) return label;
      const x = 90 + ((p.startedAtMs - t0) / span) * (W - 180);
      const w = Math.max(2, (((p.endedAtMs ?? p.startedAtMs) - p.startedAtMs) / span) * (W - 180));
      const fill = p.state === 'done' ? (PHASE_FILL[p.name] ?? '#868e96') : '#c92a2a';
      return `${label}<rect x="${x.toFixed(1)}" y="${y + 2}" width="${w.toFixed(1)}" height="12" rx="2" fill="${fill}"><title>${esc(`${p.name}: ${p.state}${p.detail ? ` — ${p.detail}` : ''}`)}</title></rect><text x="${W - 80}" y="${y + 12}" font-size="11">${esc(p.state === 'done' ? fmtDuration(p.durationMs) : p.state)}</text>`;
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${r.phases.length * 18}" role="img" aria-label="phases of ${esc(r.id)}">${rows}</svg>`;
}

function resultOf(r: DrillRecord): string {
  if (r.status === 'passed') return 'pass';
  if (r.status === 'failed') return r.error ? 'failed' : 'over target';
  return r.status;
}

/** The report as one HTML page that opens anywhere, offline. */
export function drillReportHtml(report: DrillReport): string {
  const summaryRows = report.scenarios
    .map((s) => {
      const pct = s.medianMttrMs !== undefined ? Math.min(100, (s.medianMttrMs / (s.targetMinutes * 60_000)) * 100) : 0;
      const bar = s.medianMttrMs !== undefined ? `<div class="bar"><div class="fill ${s.passed === s.measured ? 'ok' : 'bad'}" style="width:${pct.toFixed(1)}%"></div></div>` : '';
      return `<tr><td>${esc(s.scenario)}</td><td>${s.drills}</td><td>${s.passed} of ${s.measured}</td><td>${fmtDuration(s.medianMttrMs)}</td><td>${fmtDuration(s.bestMttrMs)} – ${fmtDuration(s.worstMttrMs)}</td><td>${s.targetMinutes} min</td><td>${bar}</td></tr>`;
    })
    .join('\n');
  const drills = [...report.records]
    .reverse()
    .map((r) => {
      const err = r.error ? `<p class="err">stopped in ${esc(r.error.phase)} on ${esc(r.error.node)}: ${esc(r.error.message)}${r.error.command ? `<br>command: <code>${esc(r.error.command.join(' '))}</code>` : ''}${r.error.stderrTail ? `<br>stderr: <code>${esc(r.error.stderrTail)}</code>` : ''}</p>` : '';
      const refused = r.status === 'refused' ? `<ul>${r.guard.reasons.map((x) => `<li>${esc(x.message)}</li>`).join('')}</ul>` : '';
      const next = r.next ? `<p>next: ${esc(r.next)}</p>` : '';
      const cmds = r.phases.reduce((n, p) => n + p.commands.length + (p.commandsOmitted ?? 0), 0);
      return `<section><h3>${esc(r.scenario)} on ${esc(r.node)} — ${esc(resultOf(r))}</h3><p class="meta">${esc(r.id)} · ${esc(new Date(r.startedAtMs).toISOString())} · ${r.kind} on ${r.target === 'lab' ? 'the namespace lab' : 'the deployed cluster'} ${r.detectedBy ? ` · detected by ${esc(detectSourceLabel(r.detectedBy))}` : ''} · MTTR ${fmtDuration(r.mttrMs)} against ${r.goal.minutes} min (${esc(r.goal.source)}) · ${plural(cmds, 'command')}</p>${phaseSvg(r)}${err}${refused}${next}</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Drill report — ${esc(report.cluster)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;padding:0 16px;color:#1a1b1e;background:#fff}
@media (prefers-color-scheme:dark){body{color:#e9ecef;background:#1a1b1e}svg text{fill:#e9ecef}.bar{background:#373a40}}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #8884}
.bar{width:160px;height:10px;background:#e9ecef;border-radius:3px}.fill{height:10px;border-radius:3px}.ok{background:#2f9e44}.bad{background:#e03131}
.meta{color:#868e96;font-size:12px}.err{color:#e03131}code{font-size:12px}section{margin:18px 0;padding-top:6px;border-top:1px solid #8884}
</style></head><body>
<h1>Drill report — ${esc(report.cluster)}</h1>
<p class="meta">${plural(report.drills, 'drill')}${report.from ? ` from ${esc(report.from)} to ${esc(report.to ?? '')}` : ''} · records sha256 ${report.recordsSha256}</p>
${report.scenarios.length ? `<h2>MTTR per scenario against its target</h2>
<table><thead><tr><th>scenario</th><th>drills</th><th>passed</th><th>median MTTR</th><th>range</th><th>target</th><th>median / target</th></tr></thead><tbody>
${summaryRows}
</tbody></table>` : '<p>No drill has been recorded for this cluster.</p>'}
${drills ? `<h2>Drills, newest first</h2>\n${drills}` : ''}
</body></html>
`;
}
