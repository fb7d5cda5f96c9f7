// Start-up: connect, learn about main, open the spec given to `kubedos serve` (or a template),
// keep the analysis in step with the text (debounced), and route pipeline events.
import { connectPlatform } from '../platform/index';
import { analysisStore } from '../features/analysis/store';
import { loadTemplate, openSpec } from '../features/spec/actions';
import { isDirty, specStore } from '../features/spec/store';
import { pipelineStore } from '../features/pipeline/store';
import { drillsStore } from '../features/drills/store';
import { usbStore } from '../features/recovery/usb-store';
import { setApi } from './api';
import { runCommand } from './commands';
import { shellStore } from './store';

export const ANALYSIS_DEBOUNCE_MS = 250;

export async function boot(): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  specStore.subscribe((s, prev) => {
    if (s.text === prev.text) return;
    if (timer) clearTimeout(timer);
    // Text replaced from a file or template: analyse at once; typing: debounce.
    if (s.loadNonce !== prev.loadNonce) analysisStore.getState().analyse(s.text);
    else timer = setTimeout(() => analysisStore.getState().analyse(specStore.getState().text), ANALYSIS_DEBOUNCE_MS);
  });
  window.addEventListener('beforeunload', (e) => {
    if (isDirty(specStore.getState())) e.preventDefault();
  });
  try {
    const api = await connectPlatform();
    setApi(api);
    api.on('pipeline.events', (events) => pipelineStore.getState().ingest(events));
    api.on('app.command', ({ command }) => runCommand(command));
    api.on('drills.events', (events) => drillsStore.getState().ingest(events));
    api.on('usb.progress', (e) => usbStore.getState().ingest(e));
    if ('closed' in api) void (api as { closed: Promise<void> }).closed.then(() => shellStore.getState().closed());
    const info = await api.invoke('app.info', {});
    shellStore.getState().connected(info);
    if (!(info.specPath && (await openSpec(info.specPath)))) await loadTemplate('lab-3');
  } catch (err) {
    shellStore.getState().failed((err as Error).message);
  }
}
