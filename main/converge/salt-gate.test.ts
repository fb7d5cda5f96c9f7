// The state the converge stage names for the Salt discovery gate exists in payload/salt: a
// renamed or mistyped state is caught here, not on a master at deploy time.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SALT_DISCOVERY_GATE_STATE, saltDiscoveryGateCommand, saltStateFiles } from './salt-gate';

const root = join(process.cwd(), 'payload/salt');

describe('Salt discovery gate state', () => {
  it('names an .sls file that exists under payload/salt', () => {
    const found = saltStateFiles(SALT_DISCOVERY_GATE_STATE).filter((f) => existsSync(join(root, f)));
    expect(found).toEqual(['orch/discovery-gate.sls']);
    expect(readFileSync(join(root, found[0]!), 'utf8')).toMatch(/salt\.state|salt\.function|salt\.runner/);
  });

  it('is what the gate command runs', () => {
    expect(saltDiscoveryGateCommand()).toEqual(['salt-run', 'state.orchestrate', 'orch.discovery-gate']);
  });

  it('maps state names the way Salt does, and the old name matches no file', () => {
    expect(saltStateFiles('kubedos.discovery')).toEqual(['kubedos/discovery.sls', 'kubedos/discovery/init.sls']);
    expect(saltStateFiles('kubedos.discovery').some((f) => existsSync(join(root, f)))).toBe(true);
    expect(saltStateFiles('kubedos.orch.discovery').some((f) => existsSync(join(root, f)))).toBe(false);
    expect(() => saltStateFiles('../etc/passwd')).toThrow(/not a Salt state name/);
  });
});
