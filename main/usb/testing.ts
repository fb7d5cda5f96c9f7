// Test helpers for USB sticks: loop devices stand in for sticks. The production rule (devices.ts)
// never treats a loop device as removable; tests say explicitly which loop devices are their
// "sticks" by injecting the device list. Everything else (mountpoints, size, the root disk) stays
// exactly what lsblk reports.
import type { DeviceSource, LsblkDevice } from './devices';
import { lsblkSource } from './devices';

/** lsblk's real list, with the given loop (or dm) devices shown as removable whole disks. */
export function loopAsStick(paths: readonly string[]): DeviceSource {
  const wanted = new Set(paths);
  return async (signal) => {
    const real = await lsblkSource(signal);
    const stick = (d: LsblkDevice): LsblkDevice => ({ ...d, type: 'disk', rm: true });
    // A dm device sits under the loop device it maps in lsblk's tree: lift it to the top level.
    const nested: LsblkDevice[] = [];
    const walk = (d: LsblkDevice, top: boolean): void => {
      if (!top && wanted.has(d.path)) nested.push(stick(d));
      for (const c of d.children ?? []) walk(c, false);
    };
    for (const d of real) walk(d, true);
    return [...real.map((d) => (wanted.has(d.path) ? stick(d) : d)), ...nested];
  };
}
