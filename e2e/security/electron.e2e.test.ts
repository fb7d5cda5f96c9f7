// Attack suite, issue 16 item 8: the Electron shell. The binary cannot run here, so the decisions
// are checked where they live (ipc/electron-policy.ts, electron-ipc.ts, electron-builder.yml);
// main/index.test.ts checks, with a fake electron module, that main/index.ts wires each one in.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { trustedSender } from '../../main/ipc/electron-ipc';

describe('security: the Electron shell', () => {
  it('item 8: the packaged binary has its fuses flipped (no run-as-node, NODE_OPTIONS, inspect; asar only, integrity-checked)', () => {
    const cfg = parse(readFileSync('electron-builder.yml', 'utf8')) as { electronFuses?: Record<string, boolean> };
    expect(cfg.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
    });
  });

  it('item 8: IPC from a subframe is refused even when its URL is our origin', () => {
    const trusted = trustedSender(() => 7);
    expect(trusted({ sender: { id: 7 }, senderFrame: { url: 'kubedos://app/index.html', parent: null } })).toBe(true);
    expect(trusted({ sender: { id: 7 }, senderFrame: { url: 'kubedos://app/index.html', parent: { url: 'kubedos://app/index.html' } } })).toBe(false);
    expect(trusted({ sender: { id: 7 }, senderFrame: { url: 'kubedos://app/x.html' } })).toBe(false);
  });
});
