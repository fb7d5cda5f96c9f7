// What a deploy learns from its nodes through the guest agent: the first-boot stage reads it,
// later stages use it, and the recovery bundle records it. Plain records (zod schemas, since the
// journal replays them when a stage is skipped as converged), so the bundle can take them
// without depending on the stages that gathered them.
import { z } from 'zod';

const PlaneKeys = z.object({ wg1: z.string(), wg2: z.string(), wg3: z.string() });

/** What the first-boot stage reads from a node through the guest agent. */
export const NodeFactsSchema = z.object({
  node: z.string(),
  vmid: z.number().int(),
  /** Contents of /var/lib/kubedos/firstboot-complete (JSON written by kubedos-firstboot.sh). */
  firstboot: z.object({ node: z.string(), startedAt: z.number(), completedAt: z.number(), steps: z.array(z.string()) }).optional(),
  /** SSH host key (ed25519, OpenSSH one-line form) read through the agent: converge pins it. */
  sshHostKey: z.string().optional(),
  /** WireGuard public keys per plane (kubedos-planes status). */
  wgPublicKeys: PlaneKeys.partial().optional(),
});
export type NodeFacts = z.infer<typeof NodeFactsSchema>;

/** The hub's facts (read from the master's planes through the agent). */
export const HubFactsSchema = z.object({
  node: z.string(),
  lanAddress: z.string(),
  enrollment: z.object({ address: z.string(), port: z.number().int() }),
  wgPublicKeys: PlaneKeys,
  listenPorts: z.object({ wg1: z.number().int(), wg2: z.number().int(), wg3: z.number().int() }),
});
export type HubFacts = z.infer<typeof HubFactsSchema>;
