// What an A/B node's serial console says about its boots (the upgrade VM tests read QEMU's log of it).

/** Root slots the kernel booted, in boot order: the kernel prints its command line once per boot. */
export function bootedSlots(serial: string): string[] {
  return [...serial.matchAll(/Command line: [^\n]*kubedos\.slot=([AB])/g)].map((m) => m[1]!);
}
