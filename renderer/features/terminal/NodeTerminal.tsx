// A shell on a node of the deployed cluster, in xterm.js: opened from the topology's node
// details, through the hub over wg1 with the host keys first boot recorded (main/terminal/).
// Keystrokes and pastes go out as terminal.input; output arrives in frames (terminal.output) and
// is written to xterm at most once per animation frame. Resize follows the panel; search and
// copy work on the scrollback; the transcript's sha256 is shown when the session ends.
import { ActionIcon, Alert, Badge, Button, Group, Modal, Text, TextInput, Tooltip } from '@mantine/core';
import { useComputedColorScheme } from '@mantine/core';
import { IconArrowDown, IconArrowUp, IconClipboard, IconCopy } from '@tabler/icons-react';
import type { SearchAddon } from '@xterm/addon-search';
import type { Terminal } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'react';
import type { TerminalExited, TerminalOpened } from '../../../common/contract/index';
import { api } from '../../shell/api';
import { notifyError } from '../../shell/notify';
import { openXterm, XTERM_THEME } from '../../shell/xterm';
import { specStore } from '../spec/store';


type Phase = { kind: 'connecting' } | { kind: 'open'; opened: TerminalOpened } | { kind: 'ended'; opened: TerminalOpened; exit: TerminalExited } | { kind: 'failed'; message: string };

export function NodeTerminal({ node, onClose }: { node?: string; onClose: () => void }) {
  return (
    <Modal opened={Boolean(node)} onClose={onClose} size="min(1200px, 96vw)" title={node ? `Terminal — ${node}` : ''} styles={{ body: { display: 'flex', flexDirection: 'column', gap: 8 } }}>
      {node && <TerminalBody node={node} />}
    </Modal>
  );
}

function TerminalBody({ node }: { node: string }) {
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const search = useRef<SearchAddon | null>(null);
  const [phase, setPhase] = useState<Phase>({ kind: 'connecting' });
  const [query, setQuery] = useState('');
  const scheme = useComputedColorScheme('dark');

  useEffect(() => {
    if (!host.current) return;
    const { term: t, fit: f, search: s } = openXterm(host.current, { scrollback: 20_000, fontSize: 13, theme: XTERM_THEME[scheme], cursorBlink: true });
    term.current = t;
    search.current = s;
    let id: string | undefined;
    let closed = false;
    // Frames that arrive before the open reply names the session are kept until it does.
    const early: { id: string; data: string }[] = [];
    let pending = '';
    let frame = 0;
    const flush = (): void => {
      frame = 0;
      if (pending) t.write(pending);
      pending = '';
    };
    const offOutput = api().on('terminal.output', (o) => {
      if (id === undefined) early.push(o);
      else if (o.id === id) {
        pending += o.data;
        frame ||= requestAnimationFrame(flush);
      }
    });
    const offExit = api().on('terminal.exit', (e) => {
      if (e.id !== id) return;
      flush();
      setPhase((p) => (p.kind === 'open' ? { kind: 'ended', opened: p.opened, exit: e } : p));
    });
    const send = (data: string): void => {
      if (id) void api().invoke('terminal.input', { id, data }).catch((err: unknown) => notifyError('Terminal input not sent', err));
    };
    // Ctrl+Shift+C / Ctrl+Shift+V copy and paste (Ctrl+C stays an interrupt for the node).
    t.attachCustomKeyEventHandler((e) => {
      if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey) return true;
      if (e.code === 'KeyC') {
        void navigator.clipboard.writeText(t.getSelection()).catch(() => undefined);
        return false;
      }
      if (e.code === 'KeyV') {
        void navigator.clipboard.readText().then((text) => t.paste(text), () => undefined);
        return false;
      }
      return true;
    });
    const onData = t.onData(send);
    const onResize = t.onResize(({ cols, rows }) => {
      if (id) void api().invoke('terminal.resize', { id, cols, rows }).catch(() => undefined);
    });
    const observer = new ResizeObserver(() => {
      if (host.current && host.current.offsetParent !== null) f.fit();
    });
    observer.observe(host.current);
    api()
      .invoke('terminal.open', { text: specStore.getState().text, node, cols: t.cols, rows: t.rows })
      .then(
        (opened) => {
          if (closed) {
            void api().invoke('terminal.close', { id: opened.id });
            return;
          }
          id = opened.id;
          for (const o of early.splice(0)) if (o.id === id) t.write(o.data);
          setPhase({ kind: 'open', opened });
          t.focus();
        },
        (err: unknown) => setPhase({ kind: 'failed', message: (err as Error).message }),
      );
    return () => {
      closed = true;
      cancelAnimationFrame(frame);
      observer.disconnect();
      onData.dispose();
      onResize.dispose();
      offOutput();
      offExit();
      if (id) void api().invoke('terminal.close', { id }).catch(() => undefined);
      t.dispose();
      term.current = null;
    };
    // The session belongs to this node; the theme is updated below without reconnecting.
  }, [node]);

  useEffect(() => {
    if (term.current) term.current.options.theme = XTERM_THEME[scheme];
  }, [scheme]);

  const find = (direction: 'next' | 'previous'): void => {
    if (!query) return;
    const opts = { caseSensitive: false, decorations: { matchOverviewRuler: '#fab005', activeMatchColorOverviewRuler: '#fd7e14', matchBackground: '#fab00555', activeMatchBackground: '#fd7e14' } };
    if (direction === 'next') search.current?.findNext(query, opts);
    else search.current?.findPrevious(query, opts);
  };
  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(term.current?.getSelection() ?? '');
    } catch (err) {
      notifyError('Could not copy to the clipboard', err);
    }
  };
  const paste = async (): Promise<void> => {
    try {
      term.current?.paste(await navigator.clipboard.readText());
      term.current?.focus();
    } catch (err) {
      notifyError('Could not read the clipboard', err);
    }
  };

  const opened = phase.kind === 'open' || phase.kind === 'ended' ? phase.opened : undefined;
  return (
    <>
      <Group gap="xs" wrap="wrap" data-testid="terminal-status">
        {phase.kind === 'connecting' && <Badge color="gray">connecting through the hub…</Badge>}
        {phase.kind === 'open' && <Badge color="green">connected</Badge>}
        {phase.kind === 'ended' && <Badge color="gray">session ended{phase.exit.exitCode !== null ? ` (exit ${phase.exit.exitCode})` : phase.exit.signal ? ` (${phase.exit.signal})` : ''}</Badge>}
        {phase.kind === 'failed' && <Badge color="red">not connected</Badge>}
        {opened && (
          <Text size="xs" c="dimmed" ff="monospace">
            {opened.hops.join(' → ')}
          </Text>
        )}
        <div style={{ flex: 1 }} />
        <TextInput size="xs" w={180} aria-label="Search the terminal" placeholder="search…" value={query} onChange={(e) => setQuery(e.currentTarget.value)} onKeyDown={(e) => e.key === 'Enter' && find(e.shiftKey ? 'previous' : 'next')} />
        <ActionIcon variant="default" aria-label="Previous match" onClick={() => find('previous')}>
          <IconArrowUp size={14} />
        </ActionIcon>
        <ActionIcon variant="default" aria-label="Next match" onClick={() => find('next')}>
          <IconArrowDown size={14} />
        </ActionIcon>
        <Tooltip label="Copy the selection (Ctrl+Shift+C)">
          <Button size="xs" variant="default" leftSection={<IconCopy size={14} />} onClick={() => void copy()}>
            Copy
          </Button>
        </Tooltip>
        <Tooltip label="Paste into the terminal (Ctrl+Shift+V)">
          <Button size="xs" variant="default" leftSection={<IconClipboard size={14} />} onClick={() => void paste()} disabled={phase.kind !== 'open'}>
            Paste
          </Button>
        </Tooltip>
      </Group>
      {phase.kind === 'failed' && (
        <Alert color="red" title={`No shell on ${node}`} data-testid="terminal-error">
          {phase.message}
        </Alert>
      )}
      {/* Kept mounted (xterm lives in it) but folded away when there is no session to show. */}
      <div
        ref={host}
        data-testid="node-terminal"
        style={phase.kind === 'failed' ? { height: 0, overflow: 'hidden' } : { height: 'min(560px, 62vh)', minHeight: 200, borderRadius: 4, overflow: 'hidden', background: XTERM_THEME[scheme].background, padding: 4 }}
      />
      <Text size="xs" c="dimmed" data-testid="terminal-transcript">
        {phase.kind === 'ended' && phase.exit.transcript
          ? `Transcript ${phase.exit.transcript.file}: ${phase.exit.transcript.bytes} bytes, sha256 ${phase.exit.transcript.sha256} (recorded in the workspace)`
          : opened?.transcriptFile
            ? `Recording the output to ${opened.transcriptFile}; its sha256 is recorded when the session ends. Ctrl+C interrupts on the node.`
            : 'SSH to the node over the cluster\'s control plane (wg1); Kubernetes is not needed.'}
      </Text>
    </>
  );
}
