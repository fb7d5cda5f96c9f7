// Which VM settings change in place (`qm set` on Proxmox, the VM record on qemu-local) and which
// need the VM re-created. One rule for the substrates' update decision (main/substrate/qm.ts
// compareConfig, provision's create/keep/update/replace) and the plan diff (`kubedos plan
// --against`): memory and cores are updates, disks, firmware and sockets are replacements.

/** Proxmox VM config keys that change without re-creating the VM. */
export const IN_PLACE_VM_KEYS = ['agent', 'balloon', 'boot', 'cores', 'cpu', 'memory', 'name', 'onboot', 'tags'] as const;

/** true when the VM config key `key` (qm's name: memory, cores, net0, scsi0, …) changes in place. */
export function changesInPlace(key: string): boolean {
  return (IN_PLACE_VM_KEYS as readonly string[]).includes(key) || /^net\d{1,2}$/.test(key);
}
