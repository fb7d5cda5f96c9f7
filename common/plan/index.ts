export { plan, planJson, policyFlows, vmTags, hubOf } from './plan';
export { diffPlan } from './diff';
export { flowWhy } from './flow-why';
export { renderNftables, NFT_TABLE, LAN_INTERFACE, COUNTER_INPUT_DENY, COUNTER_INTER_PLANE_DENY } from './nftables';
export { macFor, deterministicMacs } from './mac';
export * from './schema';
export { nodeConfig, NodeConfig, NODE_CONFIG_PATH } from './node-config';
export { owns, ownershipOf, ownershipTags, inVmidRange, NOTHING_OWNED } from './ownership';
export type { Ownership } from './ownership';
