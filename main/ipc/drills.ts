// The workbench's binding of the drill service (main/drills/service.ts): the same preflight and
// lab run as `kubedos drill --lab`, the record streamed on drills.events at every phase change,
// one drill at a time, cancellable; and the report export of `kubedos drill --history --export`.
import type { RequestParsed, ResultOf } from '../../common/contract/index';
import type { DrillEvent } from '../../common/drills/live';
import { drillReport, drillReportHtml, drillReportJson } from '../../common/drills/report';
import type { DrillRecord } from '../../common/drills/timeline';
import { DeployRequestError, analyse } from '../deploy/service';
import { readDrillHistory } from '../drills/history';
import type { LabDrillRun } from '../drills/service';
import { drillPreflight, eligibleTargets, guardNodes, LAB_NEEDS_ROOT, runLabDrill } from '../drills/service';

/** What the workbench says when a drill it started stops early: the lab went with it. */
export const WORKBENCH_NEXT = 'the namespace lab was removed when the drill stopped, so nothing stays fenced; run the drill again';

export interface DrillBinding {
  env: NodeJS.ProcessEnv;
  emit: (events: DrillEvent[]) => void;
  /** Runs a drill whose preflight passed; default: the namespace lab (runLabDrill). */
  runner?: (o: LabDrillRun) => Promise<DrillRecord>;
  controller?: AbortController;
  running?: Promise<DrillRecord>;
}

export function drillCheck(r: RequestParsed<'drills.check'>): ResultOf<'drills.check'> {
  const { plan: p } = analyse(r.text);
  const pre = drillPreflight(p, r.scenario, r.node);
  return { scenario: pre.scenario, ...(pre.node ? { node: pre.node } : {}), eligible: eligibleTargets(r.scenario, guardNodes(p)), reasons: pre.reasons, ...(pre.cannotRun ? { cannotRun: pre.cannotRun } : {}) };
}

export async function drillRun(b: DrillBinding, r: RequestParsed<'drills.run'>): Promise<DrillRecord> {
  if (b.running) throw new DeployRequestError('drills.busy', 'a drill is already running in this workbench', 'wait for it to end or stop it');
  const { spec, plan: p } = analyse(r.text);
  const pre = drillPreflight(p, r.scenario, r.node);
  if (pre.reasons.length) throw new DeployRequestError('drills.refused', `refused: ${pre.reasons.map((x) => x.message).join('; ')}`, 'pick another node or scenario');
  // An injected runner (tests: in memory) needs no root; the lab does.
  if (pre.cannotRun && !(b.runner && pre.cannotRun === LAB_NEEDS_ROOT)) throw new DeployRequestError('drills.cannot-run', pre.cannotRun, 'run it from the command line as root: kubedos drill SPEC --scenario NAME --lab');
  const controller = new AbortController();
  b.controller = controller;
  let current: string | undefined;
  const run = (b.runner ?? runLabDrill)({
    plan: p,
    spec,
    scenario: r.scenario,
    node: r.node,
    env: b.env,
    nextOnInterrupt: WORKBENCH_NEXT,
    signal: controller.signal,
    log: (line) => current && b.emit([{ type: 'log', id: current, line: line.slice(0, 4000) }]),
    onRecord: (rec) => {
      current = rec.id;
      b.emit([{ type: 'record', record: rec }]);
    },
  });
  b.running = run;
  try {
    return await run;
  } finally {
    b.running = undefined;
    b.controller = undefined;
  }
}

export function drillCancel(b: DrillBinding): { cancelled: boolean } {
  if (!b.controller) return { cancelled: false };
  b.controller.abort(new Error('stopped from the workbench'));
  return { cancelled: true };
}

export function drillReportOf(cluster: string, env: NodeJS.ProcessEnv): ResultOf<'drills.report'> {
  const h = readDrillHistory(cluster, env);
  const report = drillReport(cluster, h.records);
  return { json: drillReportJson(report), html: drillReportHtml(report), drills: h.records.length };
}
