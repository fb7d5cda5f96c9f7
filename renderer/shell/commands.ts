// App commands: the Electron menu sends them; the same ones are keyboard shortcuts in the page.
import type { AppCommand } from '../../common/contract/index';
import { requestOpen, requestSaveAs, requestTemplate, saveSpec } from '../features/spec/actions';
import { runPlanPipeline } from '../features/pipeline/actions';
import { shellStore } from './store';
import type { ViewName } from './store';

let toggleTheme: () => void = () => {};
export function setThemeToggle(fn: () => void): void {
  toggleTheme = fn;
}

export function runCommand(command: AppCommand): void {
  if (command.startsWith('view.')) return shellStore.getState().setView(command.slice(5) as ViewName);
  switch (command) {
    case 'spec.new':
      return requestTemplate();
    case 'spec.open':
      return requestOpen();
    case 'spec.save':
      return void saveSpec();
    case 'spec.saveAs':
      return requestSaveAs();
    case 'theme.toggle':
      return toggleTheme();
    case 'pipeline.run':
      return void runPlanPipeline();
  }
}
