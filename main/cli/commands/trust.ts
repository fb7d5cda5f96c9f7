// `kubedos trust list SPEC`: the identities in the cluster's workspace with expiry and the
// spec's rotation policy (main/trust/inventory.ts). Read-only; the other trust operations
// (revoke, rotate, enrollment window) are not in this command yet.
import { renderTable } from '../../../common/text/table';
import { closest } from '../../../common/text/suggest';
import { trustInventory } from '../../trust/inventory';
import { clusterWorkspace } from '../../workspace';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';

export const trustCommand: CliCommand = {
  name: 'trust',
  summary: 'list the cluster\'s certificates with expiry, judged against security.keyRotation (read-only)',
  usage: 'kubedos trust list SPEC [--json]',
  help: [
    'Reads <workspace>/clusters/<name>/trust: root CA, cluster intermediate, the hub\'s enrollment TLS',
    'certificate (and node identities when present), and revoked.json. Leaf certificates are due for',
    'rotation kubeCertDays after they were issued; warnings start 7 days before that day or before expiry.',
    'WireGuard key ages are not recorded by the deploy, so wireguardDays is not checked here.',
    '  --json   the inventory as JSON (TrustInventory in main/trust/inventory.ts)',
    'Exit status: 0 nothing due, 1 a certificate expired or overdue for rotation (or the spec is not valid), 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { json: { type: 'boolean' } });
    const [action, file, extra] = positionals;
    if (action !== 'list') {
      const guess = action ? closest(action, ['list']) : undefined;
      throw new UsageError(action === undefined ? 'missing the action: kubedos trust list SPEC' : `unknown action "${action}"${guess ? '; did you mean list?' : ''} (the only action is list)`);
    }
    if (!file || extra !== undefined) throw new UsageError(!file ? 'missing the SPEC' : 'exactly one SPEC');
    const loaded = loadSpec(file, io.cwd);
    if (!loaded.spec) return reportInvalidSpec(loaded, file, io, 'nothing listed');
    const inv = trustInventory(clusterWorkspace(loaded.spec.metadata.name, io.env), loaded.spec);
    const bad = inv.identities.some((i) => i.status === 'expired' || i.status === 'rotation-due');
    if (values.json) {
      io.out(JSON.stringify(inv, null, 2));
      return bad ? 1 : 0;
    }
    if (inv.identities.length === 0) {
      io.out(`no certificates in ${inv.dir}: they are made by the first deploy (kubedos deploy SPEC)`);
      return 0;
    }
    io.out(
      renderTable(
        ['FILE', 'SUBJECT', 'NOT AFTER', 'DAYS LEFT', 'ROTATE BY', 'STATUS'],
        inv.identities.map((i) => [i.file, i.subject, i.notAfter.slice(0, 10), String(i.daysLeft), i.rotateBy?.slice(0, 10) ?? '-', i.status]),
      ),
    );
    io.out(inv.revoked.length ? `revoked: ${inv.revoked.map((r) => `${r.node} (${r.reason})`).join(', ')}` : 'revoked: none');
    for (const w of inv.warnings) io.err(`warning: ${w}`);
    return bad ? 1 : 0;
  },
};
