// Binds the contract to the engine: every request channel's handler, in plain Node (no
// Electron), shared by the Electron IPC and the WebSocket bridge.
import type { EventChannel, EventOf, ResultOf } from '../../common/contract/index';
import { parseEvent } from '../../common/contract/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import { plan } from '../../common/plan/index';
import { isTemplateName, parseSpec, TEMPLATE_NAMES, TEMPLATES } from '../../common/spec/index';
import type { StageDefinition } from '../pipeline/runner';
import { runPipeline } from '../pipeline/runner';
import { planPipeline } from '../stages/index';
import type { Handlers } from './dispatch';
import { EventBatcher } from './event-batcher';
import { SpecAccessError, SpecFiles } from './spec-files';

export const APP_NAME = "Kube'd'OS Foundry";
export const APP_VERSION = '0.1.0';

export type Emit = <C extends EventChannel>(channel: C, payload: EventOf<C>) => void;

export interface WorkbenchOptions {
  transport: 'electron' | 'websocket';
  workspace: string;
  specPath?: string;
  emit: Emit;
  /** Native dialogs (Electron only). Return undefined when the user cancels. */
  pickOpenPath?: () => Promise<string | undefined>;
  pickSavePath?: (suggested?: string) => Promise<string | undefined>;
  /** Stage lists per pipeline; tests inject their own. */
  pipelines?: Partial<Record<'plan', (source: { name: string; text: string }) => StageDefinition[]>>;
}

export interface Workbench {
  handlers: Handlers;
  /** Aborts running pipelines and waits for them to end. */
  dispose(): Promise<void>;
}

export function createWorkbench(options: WorkbenchOptions): Workbench {
  const files = new SpecFiles(options.workspace, options.specPath);
  const runs = new Map<string, { controller: AbortController; done: Promise<unknown> }>();
  const emit: Emit = (channel, payload) => options.emit(channel, parseEvent(channel, payload));
  const stagesFor = options.pipelines?.plan ?? ((source: { name: string; text: string }) => planPipeline(source).stages);

  const handlers: Handlers = {
    'app.info': () => ({
      name: APP_NAME,
      version: APP_VERSION,
      transport: options.transport,
      workspace: files.workspace,
      ...(options.specPath ? { specPath: files.check(options.specPath) } : {}),
      nativeDialogs: Boolean(options.pickOpenPath),
    }),
    'spec.parse': ({ text }) => parseSpec(text),
    'spec.templates': () => TEMPLATE_NAMES.map((name) => ({ name, description: TEMPLATES[name].description })),
    'spec.template': ({ name }) => {
      if (!isTemplateName(name)) throw new SpecAccessError(`no template "${name}"`, `templates: ${TEMPLATE_NAMES.join(', ')}`);
      return { name, text: TEMPLATES[name].text };
    },
    'spec.list': () => files.list(),
    'spec.open': async ({ path }) => {
      if (path === undefined) {
        if (!options.pickOpenPath) throw new SpecAccessError('no file dialog over the browser bridge: give a path inside the workspace', `workspace: ${files.workspace}`);
        const picked = await options.pickOpenPath();
        if (!picked) return null;
        files.allow(picked);
        return files.read(picked);
      }
      return files.read(path);
    },
    'spec.save': async ({ path, text }) => {
      let target = path;
      if (target === undefined) {
        if (!options.pickSavePath) throw new SpecAccessError('no file dialog over the browser bridge: give a path inside the workspace', `workspace: ${files.workspace}`);
        target = await options.pickSavePath();
        if (!target) return null;
        files.allow(target);
      }
      return files.write(target, text);
    },
    'plan.compute': ({ text }) => {
      const parsed = parseSpec(text);
      return parsed.spec ? { diagnostics: parsed.diagnostics, plan: plan(parsed.spec) } : { diagnostics: parsed.diagnostics };
    },
    'pipeline.run': ({ pipeline, text, name }) => startRun(pipeline, { name: name ?? 'editor', text }),
    'pipeline.cancel': ({ runId }) => {
      const run = runs.get(runId);
      if (!run) return { cancelled: false };
      run.controller.abort(new Error('cancelled from the workbench'));
      return { cancelled: true };
    },
  };

  function startRun(pipeline: 'plan', source: { name: string; text: string }): Promise<ResultOf<'pipeline.run'>> {
    const controller = new AbortController();
    const batcher = new EventBatcher((events) => emit('pipeline.events', events));
    // runPipeline emits its first event synchronously, before `done` below exists: the record
    // is created first and completed after.
    const record: { controller: AbortController; done: Promise<unknown> } = { controller, done: Promise.resolve() };
    return new Promise((resolveStart, rejectStart) => {
      let started = false;
      const onEvent = (event: PipelineEvent): void => {
        if (!started && event.type === 'run') {
          started = true;
          runs.set(event.runId, record);
          resolveStart({ runId: event.runId, stages: event.stages });
        }
        batcher.push(event);
      };
      record.done = runPipeline(stagesFor(source), { name: pipeline, onEvent, signal: controller.signal })
        .catch((err: unknown) => {
          if (!started) rejectStart(err);
        })
        .finally(() => {
          if (!started) rejectStart(new Error(`pipeline ${pipeline} ended before it started`));
          batcher.flush();
          for (const [id, r] of runs) if (r.controller === controller) runs.delete(id);
        });
    });
  }

  return {
    handlers,
    async dispose() {
      const pending = [...runs.values()];
      for (const r of pending) r.controller.abort(new Error('workbench closing'));
      await Promise.allSettled(pending.map((r) => r.done));
    },
  };
}
