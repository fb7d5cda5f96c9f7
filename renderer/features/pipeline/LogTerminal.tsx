// Live logs in xterm.js. Lines arrive through the LogBuffer (not React state) and are written
// once per animation frame, so 10,000 lines/s cost ~60 writes/s. Filter by stage and node,
// search, copy what is shown, and follow the tail or stay where you scrolled.
import { ActionIcon, Button, Group, Select, Switch, Text, TextInput, Tooltip } from '@mantine/core';
import { useComputedColorScheme } from '@mantine/core';
import { IconArrowDown, IconArrowUp, IconCopy } from '@tabler/icons-react';
import type { FitAddon } from '@xterm/addon-fit';
import type { SearchAddon } from '@xterm/addon-search';
import type { Terminal } from '@xterm/xterm';
import { useEffect, useMemo, useRef, useState } from 'react';
import { useStore } from 'zustand';
import { noticeStore, notifyError } from '../../shell/notify';
import { shellStore } from '../../shell/store';
import { openXterm, XTERM_THEME } from '../../shell/xterm';
import { analysisStore } from '../analysis/store';
import type { LogLine } from './log-buffer';
import { formatLogLine, matches } from './log-buffer';
import { logFilterStore } from './log-filter';
import { pipelineLogs, pipelineStore } from './store';
import { upgradeLinesStore } from './UpgradePanel';
import { plural } from '../../../common/text/plural';

const REDRAW_LIMIT = 50_000;

export function LogTerminal() {
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const search = useRef<SearchAddon | null>(null);
  const fit = useRef<FitAddon | null>(null);
  const filter = useStore(logFilterStore, (s) => s.filter);
  const setFilter = logFilterStore.getState().setFilter;
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState('');
  const filterRef = useRef(filter);
  const followRef = useRef(follow);
  followRef.current = follow;
  const order = useStore(pipelineStore, (s) => s.order);
  const nodeStates = useStore(pipelineStore, (s) => s.nodes);
  const planNodes = useStore(analysisStore, (s) => s.plan?.nodes);
  // The plan's nodes (in plan order) and any other node a stage reported on.
  const nodeNames = useMemo(() => {
    const names = planNodes?.map((n) => n.name) ?? [];
    return [...names, ...Object.keys(nodeStates).filter((n) => !names.includes(n)).sort()];
  }, [nodeStates, planNodes]);
  const view = useStore(shellStore, (s) => s.view);
  const scheme = useComputedColorScheme('dark');

  useEffect(() => {
    if (!host.current) return;
    const { term: t, fit: f, search: s } = openXterm(host.current, { convertEol: true, disableStdin: true, scrollback: 100_000, fontSize: 12, theme: XTERM_THEME.dark, cursorStyle: 'bar', cursorInactiveStyle: 'none' });
    term.current = t;
    fit.current = f;
    search.current = s;
    let pending: string[] = [];
    let frame = 0;
    const flush = (): void => {
      frame = 0;
      if (pending.length === 0) return;
      const chunk = `${pending.join('\n')}\n`;
      pending = [];
      t.write(chunk, () => {
        if (followRef.current) t.scrollToBottom();
      });
    };
    const unsubscribe = pipelineLogs.subscribe((added: readonly LogLine[], reset: boolean) => {
      if (reset) {
        pending = [];
        t.reset();
        return;
      }
      for (const l of added) if (matches(l, filterRef.current)) pending.push(formatLogLine(l));
      frame ||= requestAnimationFrame(flush);
    });
    // Scrolling up by hand means "stop following"; the switch shows it and turns it back on.
    const onWheel = (e: WheelEvent): void => {
      if (e.deltaY < 0 && followRef.current) setFollow(false);
    };
    // Capture phase: xterm's viewport consumes the wheel event.
    host.current.addEventListener('wheel', onWheel, { passive: true, capture: true });
    const observer = new ResizeObserver(() => {
      if (host.current && host.current.offsetParent !== null) f.fit();
    });
    observer.observe(host.current);
    const hostEl = host.current;
    return () => {
      cancelAnimationFrame(frame);
      hostEl.removeEventListener('wheel', onWheel, { capture: true });
      observer.disconnect();
      unsubscribe();
      t.dispose();
      term.current = null;
    };
  }, []);

  useEffect(() => {
    if (term.current) term.current.options.theme = XTERM_THEME[scheme];
  }, [scheme]);

  // Coming back to the view: the container was hidden, so measure again.
  useEffect(() => {
    if (view === 'pipeline') requestAnimationFrame(() => fit.current?.fit());
  }, [view]);

  // A new filter redraws what is already buffered (the newest REDRAW_LIMIT matching lines).
  useEffect(() => {
    filterRef.current = filter;
    const t = term.current;
    if (!t) return;
    t.reset();
    const lines = pipelineLogs.all().filter((l) => matches(l, filter));
    const shown = lines.slice(-REDRAW_LIMIT);
    if (lines.length > shown.length) t.write(`\x1b[90m… ${lines.length - shown.length} earlier lines not shown (copy includes them)\x1b[0m\n`);
    if (shown.length) t.write(`${shown.map(formatLogLine).join('\n')}\n`);
    if (followRef.current) t.scrollToBottom();
  }, [filter]);

  useEffect(() => {
    if (follow) term.current?.scrollToBottom();
  }, [follow]);

  const copy = async (): Promise<void> => {
    const text = pipelineLogs
      .all()
      .filter((l) => matches(l, filter))
      .map((l) => `${l.time} ${l.node ? `${l.stage}/${l.node}` : l.stage} ${l.line}`)
      .join('\n');
    try {
      await navigator.clipboard.writeText(text);
      noticeStore.getState().push({ kind: 'info', title: 'Copied', message: `${text ? text.split('\n').length : 0} log lines` });
    } catch (err) {
      notifyError('Could not copy to the clipboard', err);
    }
  };
  const find = (direction: 'next' | 'previous'): void => {
    if (!query) return;
    setFollow(false);
    const opts = { caseSensitive: false, decorations: { matchOverviewRuler: '#fab005', activeMatchColorOverviewRuler: '#fd7e14', matchBackground: '#fab00555', activeMatchBackground: '#fd7e14' } };
    if (direction === 'next') search.current?.findNext(query, opts);
    else search.current?.findPrevious(query, opts);
  };

  return (
    <div style={{ display: 'flex', flexDirection: 'column', height: '100%', minHeight: 0 }}>
      <Group gap="xs" p="xs" wrap="wrap">
        <Select
          size="xs"
          w={150}
          aria-label="Filter logs by stage"
          placeholder="all stages"
          clearable
          clearButtonProps={{ 'aria-label': 'Clear the stage filter' }}
          data={order}
          value={filter.stage ?? null}
          onChange={(v) => setFilter((f) => ({ ...f, stage: v ?? undefined }))}
          data-testid="log-stage-filter"
        />
        <Select
          size="xs"
          w={160}
          aria-label="Filter logs by node"
          placeholder="all nodes"
          clearable
          clearButtonProps={{ 'aria-label': 'Clear the node filter' }}
          searchable
          data={nodeNames}
          value={filter.node ?? null}
          onChange={(v) => setFilter((f) => ({ ...f, node: v ?? undefined }))}
          data-testid="log-node-filter"
        />
        {(filter.stage !== undefined || filter.node !== undefined) && (
          // Mantine's clear buttons are hidden from assistive tech; this one is reachable by keyboard.
          <Button size="xs" variant="subtle" onClick={() => setFilter({})}>
            All lines
          </Button>
        )}
        <TextInput
          size="xs"
          w={200}
          aria-label="Search the logs"
          placeholder="search…"
          value={query}
          onChange={(e) => setQuery(e.currentTarget.value)}
          onKeyDown={(e) => e.key === 'Enter' && find(e.shiftKey ? 'previous' : 'next')}
        />
        <ActionIcon variant="default" aria-label="Previous match" onClick={() => find('previous')}>
          <IconArrowUp size={14} />
        </ActionIcon>
        <ActionIcon variant="default" aria-label="Next match" onClick={() => find('next')}>
          <IconArrowDown size={14} />
        </ActionIcon>
        <Switch size="xs" label="Follow" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} aria-label="Follow the newest lines" />
        <Tooltip label="Copy the shown lines (all of them, not only the visible part)">
          <Button size="xs" variant="default" leftSection={<IconCopy size={14} />} onClick={() => void copy()}>
            Copy
          </Button>
        </Tooltip>
        <LogCount />
      </Group>
      <div ref={host} className="kd-log" data-testid="log-terminal" role="log" aria-label="Pipeline logs" style={{ flex: 1, minHeight: 0, background: XTERM_THEME[scheme].background }} />
    </div>
  );
}

/** Its own component, so a new batch of lines re-renders this text only, not the toolbar. */
function LogCount() {
  const logCount = useStore(pipelineStore, (s) => s.logCount);
  const upgradeLines = useStore(upgradeLinesStore, (s) => s.count);
  return (
    <Text size="xs" c="dimmed" data-testid="log-count">
      {logCount === 0 && upgradeLines > 0 ? `0 pipeline lines · the upgrade's lines are above (${plural(upgradeLines, 'line')})` : `${logCount} lines`}
    </Text>
  );
}
