// The child process of upgrade-interrupt.test.ts: the CLI's main() (its signal handlers, its
// stdout and stderr) running what `kubedos upgrade` runs for a node's slot write on qemu-local
// (VmNodeOps.writeSlot: the slot image cut from N+1's qcow2 in ARTIFACT_DIR, then sent through the
// node's virtio-serial port, VmNodeOps.close() on the way out), with a driver whose node never
// reads the port: the write hangs as on a stuck node, until a signal stops it. "stuck" as the
// second argument: removing the port hangs too, so only a second signal ends the process.
// Prints "writing" on stdout once the image is cut and the node's script started.
// DIGEST names N+1's signed manifest the test kept in the workspace (what the cut checks the qcow2 against).
//   node bin/run-ts.mjs main/cli/upgrade-interrupt.child.ts ARTIFACT_DIR DIGEST [stuck]
import { Writable } from 'node:stream';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { GuestExecResult, SubstrateDriver } from '../substrate/driver';
import { VmNodeOps } from '../upgrade/vm-ops';
import { slotWriteDetail } from '../../common/upgrade/progress';
import type { CliCommand } from './command';
import { main } from './main';

const holdSlot: CliCommand = {
  name: 'hold-slot',
  summary: 'a slot write that never ends (test child)',
  usage: 'hold-slot ARTIFACT_DIR DIGEST [stuck]',
  help: '',
  async run([artifactDir, digest, mode], io) {
    const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
    const driver = {
      target: 'qemu-local',
      guestExec(_vmid: number, argv: readonly string[], o: { signal?: AbortSignal }): Promise<GuestExecResult> {
        if (!argv.some((a) => a.endsWith('/kubedos-slot-write'))) return Promise.resolve({ exitCode: 0, stdout: '', stderr: '' });
        io.out('writing');
        return new Promise((_, reject) => o.signal?.addEventListener('abort', () => reject(new Error('cancelled')), { once: true }));
      },
      guestChannel() {
        return Promise.resolve({
          guestPath: '/dev/virtio-ports/org.kubedos.slot',
          // The node never reads: the first chunk fills the port and no 'drain' comes.
          connect: () => Promise.resolve(new Writable({ highWaterMark: 1024, write: () => undefined })),
          close: () => (mode === 'stuck' ? new Promise<void>(() => setInterval(() => undefined, 1000)) : Promise.resolve()),
        });
      },
    } as unknown as SubstrateDriver;
    // A real port and guest agent hold sockets open meanwhile: without a handle the process would just end.
    const alive = setInterval(() => undefined, 1000);
    const ops = new VmNodeOps({ spec, plan: plan(spec), driver, env: io.env, artifactDir: artifactDir!, converge: () => Promise.resolve() });
    try {
      await ops.writeSlot('w-1', 'B', { version: '0.1.1', digest: digest! }, { signal: io.signal, onProgress: (p) => io.err(slotWriteDetail(p)) });
      return 0;
    } catch (err) {
      // As `kubedos upgrade` reports a cancelled run (its report(): exit 130); any other end is 1.
      if (!io.signal.aborted) throw err;
      io.err(`hold-slot cancelled: ${(err as Error).message}`);
      return 130;
    } finally {
      await ops.close();
      clearInterval(alive);
    }
  },
};

process.exitCode = await main(['hold-slot', ...process.argv.slice(2)], {}, [holdSlot]);
