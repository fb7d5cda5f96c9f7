// Artifacts: what the build stage WILL produce for this plan. The build runs in the deploy or
// `kubedos build`; this view does not read build output yet, so every value here is derived
// from the plan (roles, node contract files and their hashes), nothing is pretended built.
import { Alert, Badge, Code, Paper, ScrollArea, Stack, Table, Text, Title } from '@mantine/core';
import { useMemo } from 'react';
import { useStore } from 'zustand';
import { canonicalJson, sha256Hex } from '../../../common/canonical';
import { NODE_CONFIG_PATH, nodeConfig } from '../../../common/plan/index';
import { analysisStore } from '../analysis/store';

export function ArtifactsView() {
  const plan = useStore(analysisStore, (s) => s.plan);
  const perNode = useMemo(
    () => (plan ? plan.nodes.map((n) => ({ name: n.name, role: n.role, sha: sha256Hex(canonicalJson(nodeConfig(plan, n.name))) })) : []),
    [plan],
  );
  if (!plan) return <Text p="md">No valid plan yet: fix the spec's problems first.</Text>;
  const roles = [...new Set(plan.nodes.map((n) => n.role))];
  return (
    <ScrollArea h="100%">
      <Stack p="md" gap="md" data-testid="artifacts">
        <Alert color="yellow" title="From the plan — nothing has been built here" data-testid="plan-only">
          This view does not read build output yet: it cannot show what a build produced, its hashes or its lock. Below is what a build of {plan.cluster.name} {plan.cluster.artifactVersion} will produce, derived from the plan (spec sha256{' '}
          {plan.cluster.specSha256.slice(0, 16)}…). To build, deploy from the Deploy view or run kubedos build; kubedos verify checks the result.
        </Alert>
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
