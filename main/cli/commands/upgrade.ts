import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { plan } from '../../../common/plan/plan';
import { plural } from '../../../common/text/plural';
import { ACTION_TEXT, renderWaves } from '../../../common/upgrade/waves';
import { diffIsEmpty, diffSummary, renderDiff } from '../../build/darksite/pins';
import { renderPayloadDiff } from '../../upgrade/sbom-diff';
import { upgradePreflight } from '../../upgrade/preflight';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';

/** Lines of a diff shown on the terminal; --json carries every one. */
const DIFF_SHOWN = 30;

/** Said after a preflight that passed: the slot write and reboot are not in this version. */
export const APPLY_NOT_AVAILABLE =
  'applying is not available yet: this version of kubedos cannot write N+1 into a node\'s passive root slot (its images have one root partition; docs/upgrades.md describes the A/B design). Nothing was touched. Use --dry-run to run the checks alone';
export const ROLLBACK_NOT_AVAILABLE =
  'rolling back is not available yet: this version of kubedos cannot switch a node back to its previous root slot (its images have one root partition; docs/upgrades.md). Nothing was touched';

export const upgradeCommand: CliCommand = {
  name: 'upgrade',
  summary: 'check that a new build N+1 may replace the cluster\'s N: signatures, cluster, version, convergence, quorum; the package diff and the waves',
  usage: 'kubedos upgrade SPEC --to BUILD_DIR [--dry-run] [--allow-downgrade] [--key PUB.pem] [--json] | kubedos upgrade SPEC --rollback',
  help: [
    'Everything is checked before any node is touched, in this order; the first failure is one message, exit 1:',
    '  the cluster has a sealed deploy (N: the build its recovery bundle recorded);',
    '  N+1 (BUILD_DIR, from kubedos build) is signed by the cluster\'s build key and every output matches;',
    '  N+1 was built for this cluster; it is newer than N (older only with --allow-downgrade);',
    '  the last deploy converged and the cluster was not stopped since;',
    '  the waves (spec: kubernetes.ha.upgradeStrategy, maxUnavailable, failure domains) keep etcd quorum.',
    'Then it prints the package diff N → N+1 (changed/added/removed, with versions, from the two signed SBOMs),',
    'the payload files that change, and the waves: the control plane first, domain by domain, the hub last.',
    'Writing N+1 into the nodes\' passive root slots is not available in this version: without --dry-run the',
    'command says so after the checks and exits 1. --rollback likewise says it cannot run yet.',
    '  --to DIR            the N+1 build directory',
    '  --dry-run           run the checks and print the plan; exit 0 when they pass',
    '  --allow-downgrade   accept an N+1 older than N',
    '  --key FILE          trust this ed25519 public key (PEM) instead of the build key in N\'s bundle',
    '  --json              the preflight result as JSON',
    'Live health (etcd members, handshakes) cannot be probed on a deployed cluster from here yet: the quorum',
    'guard assumes the members healthy as the converged deploy left them, and says so.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      to: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'allow-downgrade': { type: 'boolean' },
      rollback: { type: 'boolean' },
      key: { type: 'string' },
      json: { type: 'boolean' },
    });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('exactly one SPEC');
    if (values.rollback && values.to) throw new UsageError('--rollback returns the cluster to the build it ran before: give either --to or --rollback');
    if (!values.rollback && !values.to) throw new UsageError('give the new build with --to BUILD_DIR (or --rollback)');
    const loaded = loadSpec(file, io.cwd);
    if (!loaded.spec) return reportInvalidSpec(loaded, file, io, 'nothing was checked or touched');
    const spec = loaded.spec;
    if (values.rollback) {
      io.err(`upgrade --rollback ${spec.metadata.name}: ${ROLLBACK_NOT_AVAILABLE}`);
      return 1;
    }
    const artifactDir = resolve(io.cwd, values.to!);
    if (!existsSync(artifactDir) || !statSync(artifactDir).isDirectory()) {
      io.err(`upgrade refused: ${values.to}: no such directory (the N+1 build directory from kubedos build --spec ${file} --out DIR). Nothing was touched`);
      return 1;
    }
    let publicKeyPem: string | undefined;
    if (values.key) {
      try {
        publicKeyPem = readFileSync(resolve(io.cwd, values.key), 'utf8');
      } catch (err) {
        io.err(`upgrade refused: cannot read --key ${values.key}: ${(err as Error).message}. Nothing was touched`);
        return 1;
      }
    }
    // Images and ISOs take seconds each to hash: say which one is being checked.
    const onProgress = (f: string): void => {
      if (!values.json && /\.(qcow2|iso)$/.test(f)) io.err(`checking ${f} against N+1's signed manifest…`);
    };
    const r = await upgradePreflight({ spec, plan: plan(spec), artifactDir, allowDowngrade: Boolean(values['allow-downgrade']), env: io.env, onProgress, ...(publicKeyPem ? { publicKeyPem } : {}) });
    if (values.json) io.out(JSON.stringify(r, null, 2));
    if (!r.ok) {
      if (!values.json) for (const c of r.checks) io.out(`ok    ${c}`);
      io.err(`upgrade refused (${r.code}): ${r.message}`);
      return 1;
    }
    if (!values.json) {
      for (const c of r.checks) io.out(`ok    ${c}`);
      io.out('');
      const pkgs = diffIsEmpty(r.diff.packages) ? ['  (no package moved)'] : renderDiff(r.diff.packages);
      io.out(`packages N → N+1: ${diffSummary(r.diff.packages)}`);
      for (const l of pkgs.length > DIFF_SHOWN ? [...pkgs.slice(0, DIFF_SHOWN), `  … and ${pkgs.length - DIFF_SHOWN} more (--json lists them all)`] : pkgs) io.out(l);
      const p = r.diff.payload;
      io.out(`payload N → N+1: ${p.changed.length} changed, ${p.added.length} added, ${p.removed.length} removed`);
      for (const l of renderPayloadDiff(p, DIFF_SHOWN)) io.out(l);
      io.out('');
      io.out(`${plural(r.waves.length, 'wave')} (${r.waves[0]!.action}: ${ACTION_TEXT[r.waves[0]!.action]}):`);
      for (const l of renderWaves(r.waves)) io.out(l);
      for (const w of r.warnings) io.out(`note: ${w}`);
    }
    if (values['dry-run']) {
      if (!values.json) io.out(`\ndry run: every check passed; nothing was touched`);
      return 0;
    }
    io.err(`upgrade ${spec.metadata.name} ${r.from.version} → ${r.to.version}: the checks passed, but ${APPLY_NOT_AVAILABLE}`);
    return 1;
  },
};
