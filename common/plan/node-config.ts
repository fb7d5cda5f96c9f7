// What one node receives from the plan: rendered into its image (or handed over at enrollment)
// as /etc/kubedos/node.json. The on-node payload (python3/bash) reads only this file, so this
// shape is the contract between the foundry and the payload.
import { z } from 'zod';
import { Plan, PlanNode, PolicyFlow } from './schema';

export const NODE_CONFIG_PATH = '/etc/kubedos/node.json';

export const NodeConfig = z.object({
  apiVersion: z.literal('kubedos.ca/v1alpha1'),
  kind: z.literal('NodeConfig'),
  cluster: Plan.shape.cluster,
  node: PlanNode,
  hub: z.object({ name: z.string(), lanAddress: z.string(), planes: Plan.shape.planes }),
  lan: Plan.shape.lan,
  policy: z.object({ defaultInterPlane: z.literal('deny'), flows: z.array(PolicyFlow) }),
  enrollment: Plan.shape.enrollment,
});
export type NodeConfig = z.infer<typeof NodeConfig>;

export function nodeConfig(plan: Plan, nodeName: string): NodeConfig {
  const node = plan.nodes.find((n) => n.name === nodeName);
  if (!node) throw new Error(`node-config: ${nodeName} is not in the plan (${plan.nodes.map((n) => n.name).join(', ')})`);
  const hub = plan.nodes.find((n) => n.hub);
  if (!hub) throw new Error('node-config: the plan has no hub');
  return {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'NodeConfig',
    cluster: plan.cluster,
    node,
    hub: { name: hub.name, lanAddress: hub.lan.address, planes: plan.planes },
    lan: plan.lan,
    policy: plan.policy,
    enrollment: plan.enrollment,
  };
}
