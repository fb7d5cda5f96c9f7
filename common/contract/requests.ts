// The request map: channel -> zod schemas of the request payload and of the result. Both
// transports validate the request on arrival in main and the result before it leaves, and
// the renderer validates the result again on arrival (Podman Desktop's typed channel map,
// with schemas instead of bare types so the boundary is checked at run time).
import { z } from 'zod';
import { Diagnostic } from '../spec/diagnostic';
import { MAX_SPEC_BYTES } from '../spec/parse';
import { ClusterSpec } from '../spec/schema';
import { Plan } from '../plan/schema';
import type { RequestChannel } from './channels';
import { DrillRecord } from '../drills/timeline';
import { HealthReport } from '../drills/health';
import { RecoveryInspection, UsbDeviceInfo } from './recovery';
import { DeployReview, DeployTarget, DeployTargets, HostKeyFingerprint, TargetCheck } from './deploy';
import { DestroyPreview, LifecycleAction, LifecycleOutcome } from './lifecycle';
import { TERMINAL_REQUESTS } from './terminal';
import { ArtifactsOverview } from './artifacts';
import { USB_REQUESTS } from './usb';
import { RESTORE_REQUESTS } from './restore';
import { TRUST_REQUESTS } from './trust';
import { WIRING_REQUESTS } from './wiring';
import { HEALTH_REQUESTS } from './health';
import { UPGRADE_REQUESTS } from './upgrade';

const SpecText = z.string().max(MAX_SPEC_BYTES, `spec text is larger than ${MAX_SPEC_BYTES / 1048576} MiB`);
/** A file path as the user typed it; main decides whether it is allowed. */
const FilePath = z.string().min(1).max(4096).refine((p) => !p.includes('\u0000'), 'path contains NUL');

/** Where a drill runs: the namespace lab built on this machine, or the spec's deployed cluster. */
export const DrillWhere = z.enum(['lab', 'cluster']);

export const TemplateInfo = z.object({ name: z.string(), description: z.string() });
export const SpecFile = z.object({ path: z.string(), text: SpecText });
export type SpecFile = z.infer<typeof SpecFile>;

export const PipelineName = z.enum(['plan']);
export type PipelineName = z.infer<typeof PipelineName>;

export const AppInfo = z.object({
  name: z.string(),
  version: z.string(),
  transport: z.enum(['electron', 'websocket']),
  /** Directory the browser bridge may open and save specs in. */
  workspace: z.string(),
  /** The spec given on the command line (`kubedos serve SPEC`), opened at start. */
  specPath: z.string().optional(),
  /** Whether spec.open/spec.save without a path can show a native file dialog. */
  nativeDialogs: z.boolean(),
});
export type AppInfo = z.infer<typeof AppInfo>;

export const REQUESTS = {
  'app.info': { request: z.object({}).strict(), result: AppInfo },
  'spec.parse': {
    request: z.object({ text: SpecText }).strict(),
    result: z.object({ diagnostics: z.array(Diagnostic), spec: ClusterSpec.optional() }),
  },
  'spec.templates': { request: z.object({}).strict(), result: z.array(TemplateInfo) },
  'spec.template': { request: z.object({ name: z.string().min(1).max(64) }).strict(), result: z.object({ name: z.string(), text: SpecText }) },
  'spec.list': { request: z.object({}).strict(), result: z.array(z.object({ path: z.string(), bytes: z.number().int().min(0) })) },
  /** Without a path: a native open dialog (Electron) — the bridge refuses. null = cancelled. */
  'spec.open': { request: z.object({ path: FilePath.optional() }).strict(), result: SpecFile.nullable() },
  /** Without a path: a native save dialog (Electron) — the bridge refuses. null = cancelled. */
  'spec.save': { request: z.object({ path: FilePath.optional(), text: SpecText }).strict(), result: z.object({ path: z.string(), bytes: z.number().int() }).nullable() },
  'plan.compute': {
    request: z.object({ text: SpecText }).strict(),
    result: z.object({ diagnostics: z.array(Diagnostic), plan: Plan.optional() }),
  },
  'pipeline.run': {
    request: z.object({ pipeline: PipelineName, text: SpecText, name: z.string().max(256).optional() }).strict(),
    result: z.object({ runId: z.string(), stages: z.array(z.string()) }),
  },
  'pipeline.cancel': { request: z.object({ runId: z.string().min(1).max(128) }).strict(), result: z.object({ cancelled: z.boolean() }) },
  /** Host entries of ~/.ssh/config, for the wizard's target picker. */
  'deploy.targets': { request: z.object({}).strict(), result: DeployTargets },
  /**
   * Proxmox: connect (host key against known_hosts, never trusting a new one here) and read the
   * inventory. qemu-local: host capacity against the plan of `text`; `probeAccel` runs the
   * short KVM test boot (up to 15 s) instead of reporting only whether /dev/kvm exists.
   */
  'deploy.checkTarget': {
    request: z.object({ target: DeployTarget, text: SpecText.optional(), probeAccel: z.boolean().optional() }).strict(),
    result: TargetCheck,
  },
  /** Trusts the host key with exactly this fingerprint (appended to known_hosts), then checks again. */
  'deploy.acceptHostKey': {
    request: z.object({ target: DeployTarget, fingerprint: HostKeyFingerprint, text: SpecText.optional() }).strict(),
    result: TargetCheck,
  },
  /** The plan's diff against what exists on the target: provision's decisions per node. */
  'deploy.review': { request: z.object({ target: DeployTarget, text: SpecText }).strict(), result: DeployReview },
  /** Starts the deploy DAG; events stream on pipeline.events; cancel with pipeline.cancel. */
  'deploy.run': {
    request: z
      .object({
        target: DeployTarget,
        text: SpecText,
        /** The spec file the text came from (a label for the journal; confined like spec.open). */
        path: FilePath.optional(),
        allowDestroy: z.boolean(),
        /** Ignore the journal and run every stage. */
        force: z.boolean().optional(),
      })
      .strict(),
    result: z.object({ runId: z.string(), stages: z.array(z.string()), workspace: z.string() }),
  },
  /** The recorded drills of a cluster (<workspace>/clusters/<name>/drills), oldest first, the last 50. */
  'drills.history': {
    request: z.object({ cluster: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a cluster name (DNS label)') }).strict(),
    result: z.object({ records: z.array(DrillRecord), total: z.number().int().min(0), unreadable: z.number().int().min(0) }),
  },
  /**
   * Before a drill: the guard's verdict from the plan (node, role, hub, catalogue), the node it
   * targets, the eligible nodes, and whether it can run where asked (the namespace lab, default, or
   * the deployed cluster on `target`: the scenario supported there, the journal, the lock) and why not.
   */
  'drills.check': {
    request: z.object({ text: SpecText, scenario: z.string().min(1).max(64), node: z.string().max(64).optional(), where: DrillWhere.optional(), target: DeployTarget.optional() }).strict(),
    result: z.object({
      scenario: z.string(),
      node: z.string().optional(),
      eligible: z.array(z.string()),
      reasons: z.array(z.object({ code: z.string(), message: z.string() })),
      cannotRun: z.string().optional(),
      where: DrillWhere.optional(),
      /** The scenario destroys the node's VM (on the deployed cluster it needs allowDestroy). */
      destroys: z.boolean().optional(),
      /** The spec allows it itself (stages.drill.allowDestroy: true). */
      allowDestroyBySpec: z.boolean().optional(),
    }),
  },
  /**
   * Runs a drill on the namespace lab of this spec's plan, or on its deployed cluster (`where:
   * 'cluster'`, on `target`; a VM-destroying scenario needs allowDestroy unless the spec allows it);
   * records stream on drills.events; the reply is the final record.
   */
  'drills.run': {
    request: z.object({ text: SpecText, scenario: z.string().min(1).max(64), node: z.string().min(1).max(64), where: DrillWhere.optional(), target: DeployTarget.optional(), allowDestroy: z.boolean().optional() }).strict(),
    result: DrillRecord,
  },
  /** Stops the running drill or heal (the lab is removed; a deployed cluster is left healing and the record says what to run). */
  'drills.cancel': { request: z.object({}).strict(), result: z.object({ cancelled: z.boolean() }) },
  /** `kubedos heal` on the deployed cluster: the verdict before, each repair's record (streamed on drills.events too), what cannot be repaired. */
  'drills.heal': {
    request: z.object({ text: SpecText, target: DeployTarget }).strict(),
    result: z.object({ before: HealthReport, records: z.array(DrillRecord), cannot: z.array(z.object({ node: z.string(), why: z.string() })) }),
  },
  /** The drill report of a cluster (the same bytes as kubedos drill --history --export). */
  'drills.report': {
    request: z.object({ cluster: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a cluster name (DNS label)') }).strict(),
    result: z.object({ json: z.string(), html: z.string(), drills: z.number().int().min(0) }),
  },
  /** What has been built for a cluster (workspace build, cache, lock); `verify` hashes every output like kubedos verify. */
  'artifacts.overview': {
    request: z.object({ cluster: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a cluster name (DNS label)'), verify: z.boolean().optional() }).strict(),
    result: ArtifactsOverview,
  },
  /** The cluster's recovery bundle: its contents; with verify, the offline checks and the restore-completeness check. */
  'recovery.inspect': {
    request: z.object({ cluster: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a cluster name (DNS label)'), verify: z.boolean().optional() }).strict(),
    result: RecoveryInspection,
  },
  /** Every disk lsblk shows, with why it may not be written (the USB dialog; nothing is written). */
  'usb.devices': { request: z.object({}).strict(), result: z.array(UsbDeviceInfo) },
  /** What `destroy` would remove from the target and this machine (nothing changes). */
  'lifecycle.preview': { request: z.object({ target: DeployTarget, text: SpecText, keepWorkspace: z.boolean().optional() }).strict(), result: DestroyPreview },
  /**
   * Stop, start or destroy the spec's cluster; events stream on pipeline.events, the reply comes
   * when it ends. destroy needs allowDestroy: true (the workbench asks for a confirmation first).
   */
  'lifecycle.run': {
    request: z.object({ action: LifecycleAction, target: DeployTarget, text: SpecText, allowDestroy: z.boolean().optional(), keepWorkspace: z.boolean().optional() }).strict(),
    result: LifecycleOutcome,
  },
  ...TERMINAL_REQUESTS,
  ...USB_REQUESTS,
  ...RESTORE_REQUESTS,
  ...TRUST_REQUESTS,
  ...WIRING_REQUESTS,
  ...HEALTH_REQUESTS,
  ...UPGRADE_REQUESTS,
} as const satisfies Record<RequestChannel, { request: z.ZodType; result: z.ZodType }>;

export type RequestOf<C extends RequestChannel> = z.input<(typeof REQUESTS)[C]['request']>;
export type RequestParsed<C extends RequestChannel> = z.output<(typeof REQUESTS)[C]['request']>;
export type ResultOf<C extends RequestChannel> = z.output<(typeof REQUESTS)[C]['result']>;
