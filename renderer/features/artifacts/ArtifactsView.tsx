// Artifacts: what has been built for this cluster (the build in its workspace — manifest, SBOM,
// provenance, signature status — the artifact cache and the darksite lock, read through
// artifacts.overview), then what a build of this plan will produce, derived from the plan.
import { Alert, Badge, Button, Code, Group, Paper, ScrollArea, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useEffect, useMemo, useState } from 'react';
import { useStore } from 'zustand';
import { canonicalJson, sha256Hex } from '../../../common/canonical';
import type { ArtifactsOverview, BuiltArtifacts } from '../../../common/contract/artifacts';
import { NODE_CONFIG_PATH, nodeConfig } from '../../../common/plan/index';
import { fmtBytes as bytes } from '../../../common/text/bytes';
import { plural } from '../../../common/text/plural';
import { api } from '../../shell/api';
import { analysisStore } from '../analysis/store';


const MAX_ROWS = 200;

function SbomTable({ b }: { b: BuiltArtifacts }) {
  const [q, setQ] = useState('');
  const pkgs = b.sbom?.packages ?? [];
  const needle = q.trim().toLowerCase();
  const hits = needle ? pkgs.filter((p) => `${p.name} ${p.version ?? ''} ${p.source ?? ''} ${p.roles ?? ''}`.toLowerCase().includes(needle)) : pkgs;
  return (
    <Paper withBorder p="sm" data-testid="artifacts-sbom">
      <Group justify="space-between" mb="xs">
        <Title order={5}>SBOM: {plural(pkgs.length, 'package')}</Title>
        <Text size="xs" c="dimmed">
          CycloneDX 1.6 · {plural(b.sbom?.files ?? 0, 'payload file')}
        </Text>
      </Group>
      <TextInput placeholder="Search packages, versions, sources…" value={q} onChange={(e) => setQ(e.currentTarget.value)} mb="xs" data-testid="sbom-search" aria-label="Search the SBOM" />
      <Text size="xs" c="dimmed" mb={4} data-testid="sbom-count">
        {needle ? `${hits.length} of ${pkgs.length} match` : `${pkgs.length} listed`}
        {hits.length > MAX_ROWS ? `; the first ${MAX_ROWS} shown` : ''}
      </Text>
      <Table fz="xs" striped>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>package</Table.Th>
            <Table.Th>version</Table.Th>
            <Table.Th>source</Table.Th>
            <Table.Th>roles</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {hits.slice(0, MAX_ROWS).map((p) => (
            <Table.Tr key={`${p.name}@${p.version ?? ''}`} data-testid="sbom-row">
              <Table.Td>{p.name}</Table.Td>
              <Table.Td ff="monospace">{p.version ?? '—'}</Table.Td>
              <Table.Td>{p.source ?? '—'}</Table.Td>
              <Table.Td>{p.roles ?? '—'}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Paper>
  );
}

function BuiltSection({ o, verifying, onVerify }: { o: ArtifactsOverview; verifying: boolean; onVerify: () => void }) {
  const b = o.build;
  const v = b.verify;
  return (
    <Stack gap="md" data-testid="artifacts-built" data-present={String(b.present)}>
      {!b.present ? (
        <Alert color="gray" title={`No build of ${o.cluster} in its workspace yet`} data-testid="artifacts-empty">
          A deploy builds into <Code>{b.dir}</Code>; nothing is there. Building from this view is not possible yet: deploy from the Deploy view, or run <Code>kubedos build --spec SPEC --out DIR</Code> (a build elsewhere is checked with <Code>kubedos verify DIR</Code>).
        </Alert>
      ) : (
        <>
          <Paper withBorder p="sm">
            <Group justify="space-between" mb="xs">
              <Title order={5}>
                Built: {b.manifest ? `${b.manifest.cluster} ${b.manifest.artifactVersion}` : 'unreadable manifest'}
              </Title>
              <Group gap="xs">
                <Badge color={v?.ok ? 'green' : 'red'} data-testid="artifacts-verify" data-ok={String(v?.ok ?? false)} data-scope={v?.scope ?? 'none'}>
                  {v ? (v.ok ? (v.scope === 'full' ? `verified: ${v.checked} files` : 'signatures valid') : 'verify failed') : 'not checked'}
                </Badge>
                <Button size="compact-xs" variant="default" loading={verifying} onClick={onVerify} data-testid="artifacts-verify-full">
                  Verify every output
                </Button>
              </Group>
            </Group>
            {v && !v.ok && (
              <Alert color="red" mb="xs" title={`${v.scope === 'full' ? 'Verification' : 'The signature check'} failed at ${v.file ?? '?'}`}>
                {v.reason}
              </Alert>
            )}
            {b.problems.map((p) => (
              <Text key={p} size="sm" c="red">
                {p}
              </Text>
            ))}
            <Text size="xs" c="dimmed" mb="xs">
              {b.dir} · {plural(b.outputs.length, 'output')}, {bytes(b.totalBytes)}
              {b.manifest ? ` · SOURCE_DATE_EPOCH ${b.manifest.sourceDateEpoch} · spec sha256 ${b.manifest.specSha256.slice(0, 12)}… · lock ${b.manifest.lockSha256.slice(0, 12)}…` : ''}
              {v?.keyid ? ` · signed by key ${v.keyid.slice(0, 16)}…` : ''}
            </Text>
            <Table fz="xs" data-testid="artifacts-outputs">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>output</Table.Th>
                  <Table.Th>kind</Table.Th>
                  <Table.Th>role</Table.Th>
                  <Table.Th>size</Table.Th>
                  <Table.Th>sha256</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {b.outputs.map((x) => (
                  <Table.Tr key={x.path}>
                    <Table.Td>{x.path}</Table.Td>
                    <Table.Td>{x.kind ?? '—'}</Table.Td>
                    <Table.Td>{x.role ?? '—'}</Table.Td>
                    <Table.Td>{bytes(x.size)}</Table.Td>
                    <Table.Td>
                      <Code>{x.sha256.slice(0, 16)}…</Code>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Paper>
          {b.sbom && <SbomTable b={b} />}
          {b.provenance && (
            <Paper withBorder p="sm" data-testid="artifacts-provenance">
              <Title order={5} mb="xs">
                Provenance (in-toto, SLSA v1)
              </Title>
              <Text size="xs">builder: {b.provenance.builder}</Text>
              <Text size="xs">build type: {b.provenance.buildType}</Text>
              <Text size="xs" mb="xs">
                {plural(b.provenance.subjects, 'subject')} · {plural(b.provenance.dependencies.length, 'resolved dependency', 'resolved dependencies')}
              </Text>
              <Table fz="xs">
                <Table.Tbody>
                  {b.provenance.dependencies.slice(0, 20).map((d) => (
                    <Table.Tr key={d.name}>
                      <Table.Td>{d.name}</Table.Td>
                      <Table.Td>
                        <Code>{d.digest.length > 60 ? `${d.digest.slice(0, 60)}…` : d.digest}</Code>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Paper>
          )}
        </>
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Paper withBorder p="sm" data-testid="artifacts-cache">
          <Title order={5} mb="xs">
            Artifact cache
          </Title>
          {o.cache.entries === 0 ? (
            <Text size="sm">Empty ({o.cache.root}): nothing has been built on this machine yet, or the cache was pruned.</Text>
          ) : (
            <>
              <Text size="xs" c="dimmed" mb="xs">
                {o.cache.root} · {plural(o.cache.entries, 'entry', 'entries')}, {bytes(o.cache.bytes)}
              </Text>
              <Table fz="xs">
                <Table.Tbody>
                  {o.cache.byKind.map((k) => (
                    <Table.Tr key={k.kind}>
                      <Table.Td>{k.kind}</Table.Td>
                      <Table.Td>{plural(k.entries, 'entry', 'entries')}</Table.Td>
                      <Table.Td>{bytes(k.bytes)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </>
          )}
        </Paper>
        <Paper withBorder p="sm" data-testid="artifacts-lock">
          <Title order={5} mb="xs">
            Darksite lock
          </Title>
          {!o.lock.exists ? (
            <Text size="sm">No lock yet ({o.lock.path}): the first build resolves one, or kubedos lock update --spec SPEC.</Text>
          ) : o.lock.error ? (
            <Text size="sm" c="red">
              {o.lock.error}
            </Text>
          ) : (
            <Stack gap={4}>
              <Text size="sm">
                {plural(o.lock.packages ?? 0, 'package')} from {o.lock.sources?.join(', ')}; lock <Code>{o.lock.sha256?.slice(0, 12)}…</Code>
              </Text>
              {o.lock.listsChanged === true && (
                <Alert color="yellow" title="Drift pending">
                  The package lists changed since this lock was resolved: the next build resolves them again (keeping locked versions). Which versions move is known only once resolved: kubedos lock update --spec SPEC prints it.
                </Alert>
              )}
              {o.lock.listsChanged === false && <Text size="xs">The package lists match it.</Text>}
              {o.lock.previous && (
                <Text size="xs">
                  It replaced <Code>{o.lock.previous.sha256.slice(0, 12)}…</Code> ({o.lock.previous.reason}): {o.lock.previous.summary}
                </Text>
              )}
            </Stack>
          )}
        </Paper>
      </SimpleGrid>
    </Stack>
  );
}

function useOverview(cluster: string | undefined) {
  const [o, setO] = useState<{ data?: ArtifactsOverview; error?: string; verifying: boolean }>({ verifying: false });
  const load = (verify: boolean) => {
    if (!cluster) return () => undefined;
    let live = true;
    setO((x) => ({ ...x, verifying: verify }));
    api()
      .invoke('artifacts.overview', { cluster, ...(verify ? { verify } : {}) })
      .then((data) => live && setO({ data, verifying: false }))
      .catch((err: Error) => live && setO({ error: err.message, verifying: false }));
    return () => {
      live = false;
    };
  };
  useEffect(() => load(false), [cluster]);
  return { ...o, verify: () => void load(true) };
}

export function ArtifactsView() {
  const plan = useStore(analysisStore, (s) => s.plan);
  const overview = useOverview(plan?.cluster.name);
  const perNode = useMemo(
    () => (plan ? plan.nodes.map((n) => ({ name: n.name, role: n.role, sha: sha256Hex(canonicalJson(nodeConfig(plan, n.name))) })) : []),
    [plan],
  );
  if (!plan) return <Text p="md">No valid plan yet: fix the spec's problems first.</Text>;
  const roles = [...new Set(plan.nodes.map((n) => n.role))];
  return (
    <ScrollArea h="100%">
      <Stack p="md" gap="md" data-testid="artifacts">
        {overview.error && (
          <Alert color="red" title="Could not read what has been built">
            {overview.error}
          </Alert>
        )}
        {!overview.data && !overview.error && <Text size="sm">Reading the workspace…</Text>}
        {overview.data && <BuiltSection o={overview.data} verifying={overview.verifying} onVerify={overview.verify} />}
        <Title order={4} mt="md" data-testid="plan-only">
          What a build of this plan will produce (from the plan, not built)
        </Title>
        <Text size="xs" c="dimmed">
          {plan.cluster.name} {plan.cluster.artifactVersion}, spec sha256 {plan.cluster.specSha256.slice(0, 16)}…; derived from the plan, nothing here is read from a build.
        </Text>
        <Paper withBorder p="sm">
          <Title order={5}>Per role</Title>
          <Table fz="xs">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>role</Table.Th>
                <Table.Th>nodes</Table.Th>
                <Table.Th>will build</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {roles.map((r) => (
                <Table.Tr key={r}>
                  <Table.Td>{r}</Table.Td>
                  <Table.Td>{plan.nodes.filter((n) => n.role === r).map((n) => n.name).join(', ')}</Table.Td>
                  <Table.Td>
                    installer ISO (preseed for {r}) and qcow2 golden image <Badge size="xs" variant="light">planned</Badge>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Paper>
        <Paper withBorder p="sm">
          <Title order={5}>Cluster-wide</Title>
          <Text size="sm">darksite apt repository (signed, offline) · manifest.json (sha256 of every output) · SBOM (CycloneDX JSON) · provenance (in-toto, SLSA v1) · DSSE ed25519 signatures</Text>
          <Text size="xs" c="dimmed">
            Secrets are referenced, never embedded: {plan.secretRefs.filter((s) => !s.ref.startsWith('node-local://')).map((s) => s.ref).join(', ') || 'none cluster-wide'}
            {`; plus ${plan.secretRefs.filter((s) => s.ref.startsWith('node-local://')).length} node-local keys generated on the nodes themselves`}
          </Text>
        </Paper>
        <Paper withBorder p="sm">
          <Title order={5}>Per-node contract ({NODE_CONFIG_PATH})</Title>
          <Text size="xs" c="dimmed" mb="xs">
            Computed now from the plan: the canonical JSON each node's payload will read, and its sha256.
          </Text>
          <Table fz="xs">
            <Table.Tbody>
              {perNode.map((n) => (
                <Table.Tr key={n.name}>
                  <Table.Td>{n.name}</Table.Td>
                  <Table.Td>{n.role}</Table.Td>
                  <Table.Td>
                    <Code>{n.sha}</Code>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Paper>
      </Stack>
    </ScrollArea>
  );
}
