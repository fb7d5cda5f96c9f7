// Runs ansible-core from the hub node against every node over wg1 (the plan's inventory).
import { parsePlayRecap } from '../../main/stages/converge';
import type { Lab } from '../../main/lab/harness';

export interface AnsibleRun {
  recap: Record<string, { ok: number; changed: number; unreachable: number; failed: number }>;
  output: string;
}

const FIXTURE_HOST = `${import.meta.dirname}/fixtures/ansible`;
/** Where the hub keeps its copy (a checkout under /tmp is not visible inside a node). */
const FIXTURE = '/usr/lib/kubedos/lab-ansible';

/** The PLAY RECAP lines of an ansible-playbook run, per host (the deploy's own parser). */
export const parseRecap = (output: string): AnsibleRun['recap'] => parsePlayRecap(output);

export async function prepareAnsible(lab: Lab): Promise<void> {
  await lab.writeFile(lab.hub.name, '/etc/kubedos/inventory.yml', lab.plan.ansibleInventory);
  await lab.copyIn(lab.hub.name, FIXTURE_HOST, FIXTURE);
  await lab.installOperatorKey();
}

export async function runAnsible(lab: Lab): Promise<AnsibleRun> {
  const log = `/tmp/ansible-${Date.now()}.log`;
  const r = await lab.try(
    lab.hub.name,
    ['ansible-playbook', '-i', '/etc/kubedos/inventory.yml', '-e', 'ansible_user=root', '-e', 'ansible_become=false', '--private-key', '/root/.ssh/id_ed25519', `${FIXTURE}/site.yml`],
    { env: { ANSIBLE_CONFIG: `${FIXTURE}/ansible.cfg`, ANSIBLE_ROLES_PATH: `${FIXTURE}/roles`, ANSIBLE_LOCAL_TEMP: '/tmp/ansible-local', ANSIBLE_NOCOLOR: '1', ANSIBLE_LOG_PATH: log }, timeoutMs: 240_000 },
  ).catch(async (err: Error) => {
    const tail = (await lab.try(lab.hub.name, ['tail', '-n', '40', log])).stdout;
    throw new Error(`${err.message}\nansible log on ${lab.hub.name} (${log}), last lines:\n${tail}`, { cause: err });
  });
  const output = r.stdout + r.stderr;
  const recap = parseRecap(output);
  if (r.exitCode !== 0) throw new Error(`ansible-playbook failed on ${lab.hub.name} (exit ${r.exitCode}):\n${output.slice(-3000)}`);
  return { recap, output };
}
