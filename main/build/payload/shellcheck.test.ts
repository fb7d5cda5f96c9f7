import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(__dirname, '../../../payload/firstboot');

describe('payload shell', () => {
  it('passes shellcheck (severity style)', () => {
    const scripts = readdirSync(dir).filter((f) => f.endsWith('.sh')).map((f) => join(dir, f));
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    // Throws with shellcheck's findings as the message when any script has one.
    const out = execFileSync('shellcheck', ['--severity=style', '--external-sources', ...scripts], { encoding: 'utf8' });
    expect(out).toBe('');
  });
});
