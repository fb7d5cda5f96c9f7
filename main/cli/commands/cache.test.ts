import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtifactCache, inputsKey } from '../../build/cache';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { cacheCommand, parseAge, parseSize } from './cache';

const root = mkdtempSync(join(tmpdir(), 'kd-cache-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function io(): CliIo & { outText: string[] } {
  const outText: string[] = [];
  return { out: (t) => outText.push(t), err: (t) => outText.push(t), cwd: root, env: { KUBEDOS_CACHE: join(root, 'cache') }, signal: new AbortController().signal, isTty: false, outText };
}

describe('kubedos cache', () => {
  it('parses sizes and ages, and rejects what it cannot read', () => {
    expect(parseSize('10G')).toBe(10 * 1024 ** 3);
    expect(parseSize('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseSize('1.5T')).toBe(1.5 * 1024 ** 4);
    expect(parseSize('1024')).toBe(1024);
    expect(() => parseSize('lots')).toThrow(UsageError);
    expect(parseAge('7d')).toBe(7 * 86_400_000);
    expect(parseAge('30m')).toBe(1_800_000);
    expect(() => parseAge('7 weeks')).toThrow(UsageError);
  });

  it('lists entries with sizes, then prunes to a size, oldest first', async () => {
    const cache = new ArtifactCache(join(root, 'cache'));
    const keys = ['a', 'b'].map((n) => inputsKey('image', { n }));
    for (const [i, k] of keys.entries()) {
      const d = join(root, `built-${i}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'disk.qcow2'), Buffer.alloc(2048 * (i + 1)));
      await cache.store(k, 'image', d);
      const t = new Date(Date.now() - (2 - i) * 86_400_000 * 10);
      utimesSync(join(root, 'cache/artifacts', k.slice(0, 2), k, 'entry.json'), t, t);
    }
    const list = io();
    expect(await cacheCommand.run([], list)).toBe(0);
    const text = list.outText.join('\n');
    expect(text).toMatch(/^key +kind +size +last used/m);
    expect(text).toMatch(new RegExp(`${keys[0]!.slice(0, 16)} +image +0\\.0 GiB +20d ago`));
    expect(text).toMatch(/2 entries, 0\.0 GiB in .*cache; [\d.]+ GiB free on that disk/);

    await expect(cacheCommand.run(['prune'], io())).rejects.toThrow(/needs --older-than/);
    await expect(cacheCommand.run(['list', '--max-size', '1G'], io())).rejects.toThrow(UsageError);

    const dry = io();
    expect(await cacheCommand.run(['prune', '--older-than', '15d', '--dry-run'], dry)).toBe(0);
    expect(dry.outText.join('\n')).toMatch(/would remove 1 entry \(/);
    expect(cache.entries()).toHaveLength(2);

    const real = io();
    expect(await cacheCommand.run(['prune', '--max-size', '5K'], real)).toBe(0);
    expect(real.outText.join('\n')).toMatch(new RegExp(`removed image ${keys[0]!.slice(0, 16)}`));
    expect(cache.entries().map((e) => e.key)).toEqual([keys[1]]);
  });
});
