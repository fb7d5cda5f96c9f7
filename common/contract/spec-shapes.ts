// Re-exports of spec shapes used by the contract (kept in one place so requests.ts stays a map).
export { ClusterSpec } from '../spec/schema';
export { MAX_SPEC_BYTES as MAX_SPEC_BYTES_CONTRACT } from '../spec/parse';
