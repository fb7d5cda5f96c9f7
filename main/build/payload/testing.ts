// Test helper: a role's payload rendered from the checkout's payload/ with fixed keys, mirror and
// packages (the ISO tests' fixture). Not used by the engine.
import { join } from 'node:path';
import type { Plan } from '../../../common/plan/schema';
import type { NodeRole } from '../../../common/spec/schema';
import { loadPayloadSources } from './load';
import { renderPayload, type RenderedPayload } from './render';

const repo = join(import.meta.dirname, '../../..');

export function renderTestPayload(plan: Plan, role: NodeRole): RenderedPayload {
  return renderPayload({
    plan,
    role,
    sources: loadPayloadSources(join(repo, 'payload')),
    sshAllowUsers: ['ops'],
    opsAuthorizedKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2i7DDbcM+UcS6tNG0kU3y4uuJ4n2xoxL7uVtdMF5Ej ops@lab-3',
    repoKeyring: new Uint8Array([1, 2, 3]),
    packages: ['openssh-server'],
    mirror: { host: '10.0.2.100', directory: '/darksite' },
    poweroff: true,
  });
}
