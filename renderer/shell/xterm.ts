// The one xterm setup of the workbench's terminals (pipeline logs, node terminal): the two
// colour themes, the font, and a terminal opened into its host with the fit and search addons.
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { Terminal } from '@xterm/xterm';
import type { ITerminalOptions } from '@xterm/xterm';

export const XTERM_THEME = {
  dark: { background: '#141517', foreground: '#d9d9d9', selectionBackground: '#3b5bdb80', cursor: '#d9d9d9' },
  light: { background: '#fafafa', foreground: '#222222', selectionBackground: '#91a7ff80', cursor: '#222222' },
} as const;

export function openXterm(host: HTMLElement, options: ITerminalOptions): { term: Terminal; fit: FitAddon; search: SearchAddon } {
  // allowProposedApi: the search addon's match highlighting uses terminal decorations.
  const term = new Terminal({ allowProposedApi: true, fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace', ...options });
  const fit = new FitAddon();
  const search = new SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.open(host);
  fit.fit();
  return { term, fit, search };
}
