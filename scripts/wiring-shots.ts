// Screenshots of the Wiring view's measured panel at 1440×900 and 1280×720, dark and light: with
// no check recorded yet, and with a recorded check that has disagreeing flows and a missing
// handshake. Through `kubedos serve` and Debian's Chromium:
//   npx tsx scripts/wiring-shots.ts [OUTDIR]   (default e2e/output/screens/wiring)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TEMPLATES } from '../common/spec/index';
import { serveSession, shots } from '../e2e/ui/session';
import { saveLastCheck } from '../main/wiring/service';

const out = resolve(process.argv[2] ?? 'e2e/output/screens/wiring');
const ws = mkdtempSync(join(tmpdir(), 'kubedos-wiring-shots-'));
writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
const session = await serveSession([join(ws, 'lab-3.yaml')], ws);
try {
  const { page } = session;
  for (const state of ['none', 'measured'] as const) {
    if (state === 'measured') {
      saveLastCheck(
        {
          cluster: 'lab-3',
          checkedAt: '2026-12-03T05:10:00.000Z',
          target: 'qemu-local',
          hub: 'master',
          flows: 198,
          passed: 196,
          failed: 2,
          durationMs: 41_800,
          mismatches: [
            { fromNode: 'w-1', fromPlane: 'wg2', from: '10.112.0.4', toNode: 'cp-1', toPlane: 'wg3', to: '10.113.0.3', port: 2379, expect: 'deny', observed: 'open' },
            { fromNode: 'cp-1', fromPlane: 'wg1', from: '10.111.0.3', toNode: 'w-1', toPlane: 'wg1', to: '10.111.0.4', port: 7070, expect: 'allow', observed: 'timeout' },
          ],
          handshakes: ['cp-1', 'w-1'].flatMap((node) => (['wg1', 'wg2', 'wg3'] as const).map((plane) => ({ node, plane, ageSeconds: node === 'w-1' && plane === 'wg3' ? null : 12 + plane.length }))),
          counters: { before: { default_deny_inter_plane: 10 }, after: { default_deny_inter_plane: 130 } },
        },
        { KUBEDOS_WORKSPACE: ws },
      );
    }
    // At each size a fresh load of the Wiring view (it reads the recorded check when it opens).
    const openWiring = async (): Promise<void> => {
      await page.reload();
      await page.locator('nav').getByText('Wiring', { exact: true }).first().click();
      await page.getByTestId(state === 'none' ? 'wiring-measured-none' : 'wiring-mismatches').waitFor({ timeout: 20_000 });
    };
    for (const path of await shots(page, out, `wiring-${state}`, { schemes: 'both', prepare: openWiring, settleMs: 600 })) console.log(path);
  }
} finally {
  await session.close();
  rmSync(ws, { recursive: true, force: true });
}
