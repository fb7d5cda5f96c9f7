// The Salt discovery gate: which orchestration state the converge stage runs on the master,
// named once. Salt maps a state name to a file under its file root (payload/salt): dots are
// folders, so orch.discovery-gate is orch/discovery-gate.sls (or orch/discovery-gate/init.sls).
// Pure.

/** `salt-run state.orchestrate <this>` on the master. */
export const SALT_DISCOVERY_GATE_STATE = 'orch.discovery-gate';

/** The command the converge stage runs for the gate. */
export function saltDiscoveryGateCommand(): string[] {
  return ['salt-run', 'state.orchestrate', SALT_DISCOVERY_GATE_STATE];
}

/** Files (relative to the Salt file root) that would hold `state`, in Salt's lookup order. */
export function saltStateFiles(state: string): string[] {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(state)) throw new Error(`"${state}" is not a Salt state name (words separated by ".")`);
  const base = state.split('.').join('/');
  return [`${base}.sls`, `${base}/init.sls`];
}
