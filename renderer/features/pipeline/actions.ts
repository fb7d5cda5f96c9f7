// Starting and cancelling pipeline runs in main.
import { api } from '../../shell/api';
import { notifyError } from '../../shell/notify';
import { shellStore } from '../../shell/store';
import { specStore } from '../spec/store';
import { pipelineStore } from './store';

export async function runPlanPipeline(): Promise<void> {
  const spec = specStore.getState();
  pipelineStore.getState().starting();
  shellStore.getState().setView('pipeline');
  try {
    await api().invoke('pipeline.run', { pipeline: 'plan', text: spec.text, name: spec.path ?? 'editor' });
  } catch (err) {
    pipelineStore.getState().startFailed((err as Error).message);
    notifyError('Could not start the pipeline', err);
  }
}

export async function cancelPipeline(): Promise<void> {
  const { runId } = pipelineStore.getState();
  if (!runId) return;
  pipelineStore.getState().cancelling();
  try {
    await api().invoke('pipeline.cancel', { runId });
  } catch (err) {
    notifyError('Could not cancel the run', err);
  }
}
