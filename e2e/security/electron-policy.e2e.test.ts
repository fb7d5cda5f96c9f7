// Attack suite, issue 16 item 8: what the Electron window may load, navigate to and open from its
// command line (ipc/electron-policy.ts; main/index.test.ts checks main/index.ts wires each in).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { navigationAllowed, requestAllowed, specFromArgv } from '../../main/ipc/electron-policy';

describe('security: the Electron window policy', () => {
  it('item 8: data: documents, frames and scripts are not loaded; any frame navigating away is stopped', () => {
    expect(requestAllowed('data:text/html,<script>alert(1)</script>', 'mainFrame')).toBe(false);
    expect(requestAllowed('data:text/html,x', 'subFrame')).toBe(false);
    expect(requestAllowed('data:text/javascript,alert(1)', 'script')).toBe(false);
    expect(requestAllowed('data:image/png;base64,iVBORw0KGgo=', 'image')).toBe(true);
    expect(requestAllowed('https://cdn.example.invalid/x.js', 'script')).toBe(false);
    expect(requestAllowed('kubedos://app/index.html', 'mainFrame')).toBe(true);
    expect(navigationAllowed('data:text/html,x')).toBe(false);
    expect(navigationAllowed('kubedos://appx.evil/')).toBe(false);
  });

  it('item 8: only a positional argument naming an existing .yaml file is opened as the spec', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubedos-sec-argv-'));
    try {
      writeFileSync(join(dir, 'site.yaml'), 'x: 1\n');
      expect(specFromArgv(['--user-data-dir=/tmp/evil.yaml'], dir)).toBeUndefined();
      expect(specFromArgv(['--inspect', '--foo=bar.yml'], dir)).toBeUndefined();
      expect(specFromArgv(['missing.yaml'], dir)).toBeUndefined();
      expect(specFromArgv(['--no-sandbox', 'site.yaml'], dir)).toBe(join(dir, 'site.yaml'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
