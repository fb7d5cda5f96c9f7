// What a deploy learns from its nodes through the guest agent: the first-boot stage reads it,
// later stages use it, and the recovery bundle records it. A plain record, so the bundle can
// take it without depending on the stages that gathered it.

/** What the first-boot stage reads from a node through the guest agent. */
export interface NodeFacts {
  node: string;
  vmid: number;
  /** Contents of /var/lib/kubedos/firstboot-complete (JSON written by kubedos-firstboot.sh). */
  firstboot?: { node: string; startedAt: number; completedAt: number; steps: string[] };
  /** SSH host key (ed25519, OpenSSH one-line form) read through the agent: converge pins it. */
  sshHostKey?: string;
  /** WireGuard public keys per plane (kubedos-planes status). */
  wgPublicKeys?: Partial<Record<'wg1' | 'wg2' | 'wg3', string>>;
}

/** The hub's facts (seed 001 reads them from the master's hub.env through the agent). */
export interface HubFacts {
  node: string;
  lanAddress: string;
  enrollment: { address: string; port: number };
  wgPublicKeys: Record<'wg1' | 'wg2' | 'wg3', string>;
  listenPorts: Record<'wg1' | 'wg2' | 'wg3', number>;
}
