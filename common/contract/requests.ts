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

const SpecText = z.string().max(MAX_SPEC_BYTES, `spec text is larger than ${MAX_SPEC_BYTES / 1048576} MiB`);
/** A file path as the user typed it; main decides whether it is allowed. */
const FilePath = z.string().min(1).max(4096).refine((p) => !p.includes('\u0000'), 'path contains NUL');

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
} as const satisfies Record<RequestChannel, { request: z.ZodType; result: z.ZodType }>;

export type RequestOf<C extends RequestChannel> = z.input<(typeof REQUESTS)[C]['request']>;
export type RequestParsed<C extends RequestChannel> = z.output<(typeof REQUESTS)[C]['request']>;
export type ResultOf<C extends RequestChannel> = z.output<(typeof REQUESTS)[C]['result']>;
