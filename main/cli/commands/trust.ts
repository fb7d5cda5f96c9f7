// `kubedos trust list|revoke|rotate|window`: thin over main/trust (inventory.ts for the list,
// service.ts + operations.ts for the operations on the hub and the nodes).
import { plan as planOf } from '../../../common/plan/index';
import { renderTable } from '../../../common/text/table';
import { closest } from '../../../common/text/suggest';
import type { TrustOperation } from '../../../common/trust/operations';
import { renderTrustReport } from '../../../common/trust/operations';
import { trustInventory } from '../../trust/inventory';
import { TrustOperationError } from '../../trust/operations';
import { guestShell } from '../../drills/shell';
import { openCluster } from '../../lifecycle/service';
import { preflightTrustOperation, runTrustOperationOnCluster, runTrustOperationOnLab, workspaceTrustTarget } from '../../trust/service';
import { clusterOperationRequest } from './lifecycle';
import { clusterWorkspace } from '../../workspace';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';

const ACTIONS = ['list', 'revoke', 'rotate', 'window'] as const;
const USAGE = {
  list: 'kubedos trust list SPEC [--json]',
  revoke: 'kubedos trust revoke SPEC NODE [--reason TEXT] [--target T] [--lab]',
  rotate: 'kubedos trust rotate SPEC --hub|--node NODE [--target T] [--lab]',
  window: 'kubedos trust window SPEC open [--minutes N]|close [--target T] [--lab]',
} as const;

export const trustCommand: CliCommand = {
  name: 'trust',
  summary: 'the cluster\'s certificates with expiry (list); revoke a node, rotate hub or node keys, open/close the enrollment window',
  usage: Object.values(USAGE).join('\n       '),
  help: [
    'list    <workspace>/clusters/<name>/trust: root CA, cluster intermediate, the hub\'s enrollment TLS certificate,',
    '        node identity certificates (issued at enrollment) and revoked.json, with days left. Leaf certificates are',
    '        due for rotation security.keyRotation.kubeCertDays after issue, WireGuard keys wireguardDays after the',
    '        enroll stage first saw them; warnings start 7 days before that day or before expiry. Read-only.',
    '        Exit 1 when a certificate expired or a certificate or key is overdue for rotation.',
    'revoke  the node goes on the hub\'s revocation list and its peers leave wg1, wg2 and wg3 on the hub at once; the',
    '        enrollment window refuses it from then on. The hub itself cannot be revoked.',
    'rotate  --node NODE: new WireGuard keys made on the node, re-enrolled with a fresh single-use token (a window is',
    '        opened for it when none is open, and closed again); the hub replaces the old peers. A revoked node is',
    '        not re-keyed. --hub: new hub keys on every plane, every enrolled node switched to them.',
    'window  open [--minutes N] (default enrollment.windowMinutes) or close the hub\'s enrollment window.',
    '',
    '  --lab   run on the plan built in network namespaces (real planes, enrollment and payload; needs root).',
    '          The lab is a throwaway copy: the workspace is not changed, and the lab is removed afterwards.',
    '          Without --lab the operation acts on the deployed cluster (the spec\'s substrate, or --target qemu-local|',
    '          proxmox://HOST) through its VMs\' guest agents; it refuses a cluster whose last deploy did not finish or',
    '          that is stopped. A revocation is also kept in the workspace\'s trust/revoked.json.',
    '  --json  the inventory (list) or the report of the operation as JSON',
    'Each operation says what it changed and what it left as it was. Exit status: 0 done, 1 refused or failed',
    '(nothing changed unless it says so), 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      json: { type: 'boolean' },
      lab: { type: 'boolean' },
      reason: { type: 'string' },
      hub: { type: 'boolean' },
      node: { type: 'string' },
      minutes: { type: 'string' },
      target: { type: 'string', short: 't' },
    });
    const [action, file, ...rest] = positionals;
    if (!action || !(ACTIONS as readonly string[]).includes(action)) {
      const guess = action ? closest(action, ACTIONS) : undefined;
      throw new UsageError(action === undefined ? `missing the action: ${ACTIONS.join(', ')}` : `unknown action "${action}"${guess ? `; did you mean ${guess}?` : ''} (actions: ${ACTIONS.join(', ')})`);
    }
    if (!file) throw new UsageError(`missing the SPEC`);
    const only = (allowed: readonly string[]): void => {
      const extra = Object.keys(values).filter((k) => !allowed.includes(k));
      if (extra.length) throw new UsageError(`--${extra[0]} does not go with trust ${action}`);
    };
    let op: TrustOperation;
    switch (action) {
      case 'list':
        only(['json']);
        if (rest.length) throw new UsageError(`exactly one SPEC`);
        return list(file, Boolean(values.json), io);
      case 'revoke': {
        only(['json', 'lab', 'reason', 'target']);
        if (rest.length !== 1) throw new UsageError(rest.length ? `one NODE at a time` : `missing the NODE to revoke`);
        op = { op: 'revoke', node: rest[0]!, ...(values.reason !== undefined ? { reason: values.reason } : {}) };
        break;
      }
      case 'rotate':
        only(['json', 'lab', 'hub', 'node', 'target']);
        if (rest.length) throw new UsageError(`name the node with --node`);
        if (Boolean(values.hub) === (values.node !== undefined)) throw new UsageError(`say which keys: --hub or --node NODE (one of them)`);
        op = values.hub ? { op: 'rotate-hub' } : { op: 'rotate-node', node: values.node! };
        break;
      default: {
        only(['json', 'lab', 'minutes', 'target']);
        const [what, ...more] = rest;
        if (what !== 'open' && what !== 'close') throw new UsageError(`${what === undefined ? 'missing open or close' : `"${what}" is not open or close${closest(what, ['open', 'close']) ? `; did you mean ${closest(what, ['open', 'close'])}?` : ''}`}`);
        if (more.length) throw new UsageError(`unexpected ${more[0]}`);
        if (what === 'close') {
          if (values.minutes !== undefined) throw new UsageError(`--minutes goes with open`);
          op = { op: 'window-close' };
        } else {
          const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
          if (minutes !== undefined && !(Number.isInteger(minutes) && minutes >= 1 && minutes <= 1440)) throw new UsageError(`--minutes ${values.minutes}: a whole number of minutes from 1 to 1440`);
          op = { op: 'window-open', ...(minutes !== undefined ? { minutes } : {}) };
        }
      }
    }
    return operate(file, op, { lab: Boolean(values.lab), json: Boolean(values.json), ...(values.target !== undefined ? { target: values.target } : {}) }, io);
  },
};

async function operate(file: string, op: TrustOperation, o: { lab: boolean; json: boolean; target?: string }, io: CliIo): Promise<number> {
  const loaded = loadSpec(file, io.cwd);
  if (!loaded.spec) return reportInvalidSpec(loaded, file, io, 'nothing changed');
  const p = planOf(loaded.spec);
  const workspace = clusterWorkspace(p.cluster.name, io.env);
  const refused = preflightTrustOperation(p, op, { workspace, lab: o.lab, cluster: !o.lab });
  if (refused) {
    io.err(`kubedos trust: ${refused}`);
    return 1;
  }
  try {
    if (o.lab) {
      const r = await runTrustOperationOnLab(p, op, { log: (l) => io.err(l), signal: io.signal });
      if (o.json) io.out(JSON.stringify(r, null, 2));
      else for (const line of renderTrustReport(r)) io.out(line);
      io.err('the namespace lab was removed with the command; the workspace and any deployed cluster were not changed');
      return 0;
    }
    const req = clusterOperationRequest(file, loaded.spec, o.target !== undefined ? { target: o.target } : {}, io, { action: 'trust operation', by: `trust ${op.op}`, specPath: loaded.path, refused: (why) => `kubedos trust: refused: ${why}; nothing was changed` });
    if (!req) return 1;
    const opened = openCluster(req.request);
    try {
      const target = await workspaceTrustTarget(p, guestShell(p, opened.driver), workspace, io.env);
      const r = await runTrustOperationOnCluster(target, workspace, op, { log: (l) => io.err(l), signal: io.signal });
      if (o.json) io.out(JSON.stringify(r, null, 2));
      else for (const line of renderTrustReport(r)) io.out(line);
      return 0;
    } finally {
      await opened.close();
    }
  } catch (err) {
    if (err instanceof TrustOperationError) {
      io.err(`kubedos trust: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

function list(file: string, json: boolean, io: CliIo): number {
  const loaded = loadSpec(file, io.cwd);
  if (!loaded.spec) return reportInvalidSpec(loaded, file, io, 'nothing listed');
  const inv = trustInventory(clusterWorkspace(loaded.spec.metadata.name, io.env), loaded.spec);
  const bad = inv.identities.some((i) => i.status === 'expired' || i.status === 'rotation-due') || inv.wireguard.some((w) => w.status === 'rotation-due');
  if (json) {
    io.out(JSON.stringify(inv, null, 2));
    return bad ? 1 : 0;
  }
  if (inv.identities.length === 0) {
    io.out(`no certificates in ${inv.dir}: they are made by the first deploy (kubedos deploy SPEC)`);
    return 0;
  }
  io.out(
    renderTable(
      ['FILE', 'SUBJECT', 'SERIAL', 'NOT AFTER', 'DAYS LEFT', 'ROTATE BY', 'STATUS'],
      inv.identities.map((i) => [i.file, i.subject, i.serial.slice(0, 16), i.notAfter.slice(0, 10), String(i.daysLeft), i.rotateBy?.slice(0, 10) ?? '-', i.status]),
    ),
  );
  if (inv.wireguard.length) {
    io.out('');
    io.out(
      renderTable(
        ['WIREGUARD KEYS OF', 'SINCE', 'AGE (DAYS)', 'ROTATE BY', 'STATUS'],
        inv.wireguard.map((w) => [w.node, w.since.slice(0, 10), String(w.ageDays), w.rotateBy.slice(0, 10), w.status]),
      ),
    );
  } else io.out('WireGuard key ages: not recorded yet (a deploy\'s enroll stage records them)');
  io.out(inv.revoked.length ? `revoked: ${inv.revoked.map((r) => `${r.node} (${r.reason})`).join(', ')}` : 'revoked: none');
  for (const w of inv.warnings) io.err(`warning: ${w}`);
  return bad ? 1 : 0;
}
