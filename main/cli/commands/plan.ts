import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Plan as PlanType, PlanDiff } from '../../../common/plan/index';
import { diffPlan, flowWhy, Plan, plan, planJson } from '../../../common/plan/index';
import { canonicalJson } from '../../../common/canonical';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { fsErrorText, isFsError } from '../fs-error';
import { renderTable } from '../../../common/text/table';
import { plural } from '../../../common/text/plural';

const MAX_PLAN_BYTES = 256 * 1024 * 1024;

export const planCommand: CliCommand = {
  name: 'plan',
  summary: 'compute the deterministic plan: VMIDs, LAN and plane addresses, MACs, VM shapes, firewall',
  usage: 'kubedos plan FILE [--json] [--out PLAN.json] [--against PREVIOUS.json] [--node NAME]',
  help: [
    'Without options: a table of nodes, addresses and planes, then the planes and the policy.',
    '  --json               the whole plan as canonical JSON (byte-identical for the same spec)',
    '  --out FILE           also write the JSON plan to FILE',
    '  --against PREVIOUS   compare with an earlier plan: create / update in place / replace (why) / keep / destroy',
    '  --node NAME          details of one node: VM shape, plane addresses, peers, nftables',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      json: { type: 'boolean' },
      out: { type: 'string', short: 'o' },
      against: { type: 'string' },
      node: { type: 'string' },
    });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('exactly one FILE');
    const loaded = loadSpec(file, io.cwd, { completeness: 'warn' });
    if (!loaded.spec) {
      return reportInvalidSpec(loaded, file, io, 'nothing planned');
    }
    const p = plan(loaded.spec);
    const json = planJson(p);
    if (values.out) writeFileSync(resolve(io.cwd, values.out), json);
    if (values.against) {
      const previous = readPlan(values.against, io);
      if (!previous) return 1;
      const diff = diffPlan(previous, p);
      io.out(values.json ? canonicalJson(diff, 2) : renderDiff(diff));
      return 0;
    }
    if (values.node) {
      const n = p.nodes.find((x) => x.name === values.node);
      if (!n) {
        io.err(`no node "${values.node}" in the plan (${p.nodes.map((x) => x.name).join(', ')})`);
        return 1;
      }
      io.out(values.json ? canonicalJson(n, 2) : renderNode(n));
      return 0;
    }
    io.out(values.json ? json.trimEnd() : renderPlan(p));
    return 0;
  },
};

function readPlan(file: string, io: CliIo): PlanType | undefined {
  const path = resolve(io.cwd, file);
  try {
    if (statSync(path).size > MAX_PLAN_BYTES) {
      io.err(`${file} is too large to be a plan`);
      return undefined;
    }
    const parsed = Plan.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      io.err(`${file} is not a kubedos plan (${first ? `${first.path.join('.')}: ${first.message}` : 'invalid'}); write one with kubedos plan SPEC --out ${file}`);
      return undefined;
    }
    return parsed.data;
  } catch (err) {
    io.err(isFsError(err) && err.code === 'ENOENT' ? `previous plan not found: ${path}; write one with: kubedos plan SPEC --out ${file}` : `cannot read the previous plan ${file}: ${fsErrorText(err)}`);
    return undefined;
  }
}

function renderPlan(p: PlanType): string {
  const rows = p.nodes.map((n) => [
    n.name,
    n.role,
    n.domain,
    String(n.vmid),
    n.color,
    n.lan.address,
    n.lan.mac,
    n.planes.wg1.address,
    n.planes.wg2.address,
    n.planes.wg3.address,
  ]);
  const planes = p.planes.map((pl) => [pl.name, pl.purpose, pl.cidr, `udp/${pl.listenPort}`, `${pl.hub} ${pl.hubAddress}`]);
  const flows = p.policy.flows.map((f) => [f.from, f.to, `${f.ports.join(', ')}`, flowWhy(f, p.nodes)]);
  return [
    `cluster ${p.cluster.name}  artifact ${p.cluster.artifactVersion}  substrate ${p.substrate.type}  spec sha256 ${p.cluster.specSha256.slice(0, 16)}`,
    `LAN ${p.lan.cidr} (blue ${p.lan.blue}, green ${p.lan.green}, active ${p.lan.active})  API VIP ${p.lan.apiVip}`,
    '',
    renderTable(['NODE', 'ROLE', 'DOMAIN', 'VMID', 'HALF', 'LAN', 'MAC', 'WG1', 'WG2', 'WG3'], rows),
    '',
    renderTable(['PLANE', 'PURPOSE', 'CIDR', 'LISTEN', 'HUB'], planes),
    '',
    `policy: default ${p.policy.defaultInterPlane} between planes; allowed flows:`,
    flows.length ? renderTable(['FROM', 'TO', 'PORTS', 'WHY'], flows) : '  (none)',
    '',
    plural(p.nodes.length, 'node'),
  ].join('\n');
}

function renderNode(n: PlanType['nodes'][number]): string {
  const vm = n.vm;
  const out = [
    `${n.name} (${n.role}${n.hub ? ', hub' : ''})  VMID ${n.vmid}  domain ${n.domain}  ${n.fqdn}`,
    `LAN ${n.lan.address}/${n.lan.prefix} (${n.color})  MAC ${n.lan.mac}`,
    `VM: ${vm.machine}, ${vm.bios} (efidisk ${vm.efidisk.pool} ${vm.efidisk.efitype}, Secure Boot keys), TPM ${vm.tpm.version}, agent on, ${vm.cpu.cores} cores ${vm.cpu.type}, ${vm.memoryMiB} MiB`,
    ...vm.disks.map((d) => `  disk scsi${d.index}: ${d.pool} ${d.sizeGiB} GiB`),
    ...vm.nics.map((x) => `  net${x.index}: virtio ${x.mac} on ${x.bridge}${x.vlan !== undefined ? ` vlan ${x.vlan}` : ''}`),
    `  tags: ${vm.tags.join(', ')}`,
    '',
  ];
  for (const pl of [n.planes.wg1, n.planes.wg2, n.planes.wg3]) {
    out.push(`${pl.plane}: ${pl.address} listen udp/${pl.listenPort} mtu ${pl.mtu}`);
    for (const peer of pl.peers) out.push(`  peer ${peer.node}${peer.endpoint ? ` @ ${peer.endpoint}` : ''} allowed ${peer.allowedIps.join(', ')}`);
  }
  out.push('', 'services:', ...n.services.map((s) => `  ${s.name} on ${s.on} ${s.ports.join(', ')}  (${s.why})`), '', n.nftables);
  return out.join('\n');
}

function renderDiff(d: PlanDiff): string {
  const rows = d.changes.map((c) => [c.action, c.node, c.reasons.join('; ')]);
  return [
    renderTable(['ACTION', 'NODE', 'WHY'], rows),
    '',
    ...(d.cluster.length ? ['cluster-wide:', ...d.cluster.map((c) => `  ${c}`), ''] : []),
    `create ${d.summary.create}, update ${d.summary.update}, replace ${d.summary.replace}, keep ${d.summary.keep}, destroy ${d.summary.destroy}`,
  ].join('\n');
}
