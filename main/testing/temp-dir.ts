// Private temporary directories for tests (mkdtemp: mode 0700, an unpredictable name). A test file
// that takes them calls `afterAll(removeTempDirs)` so none is left behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];

/** A new private directory under the OS temp dir, named PREFIX + random; removed by removeTempDirs. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Removes every directory tempDir made in this test file. */
export function removeTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}
