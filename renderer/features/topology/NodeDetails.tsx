// Details of one planned node: VM shape, plane addresses and peers, services, nftables.
import { Badge, Button, Code, Drawer, Group, ScrollArea, Stack, Table, Text, Title } from '@mantine/core';
import { IconTerminal2 } from '@tabler/icons-react';
import type { PlanNode } from '../../../common/plan/index';
import type { LiveNodeHealth } from '../../../common/health/now';
import { NodeLiveSection } from './LiveHealth';

export function NodeDetails({ node, live, onClose, onOpenTerminal }: { node?: PlanNode; live?: LiveNodeHealth; onClose: () => void; onOpenTerminal?: (node: string) => void }) {
  return (
    <Drawer opened={Boolean(node)} onClose={onClose} position="right" size="xl" title={node ? `${node.name} — ${node.role}${node.hub ? ' (hub)' : ''}` : ''} scrollAreaComponent={ScrollArea.Autosize}>
      {/* Long addresses and nftables lines wrap instead of widening the drawer. */}
      {node && (
        <Stack gap="md" data-testid="node-details" style={{ maxWidth: '100%', overflowWrap: 'anywhere' }}>
          {onOpenTerminal && (
            <Group gap="xs">
              <Button size="xs" leftSection={<IconTerminal2 size={14} />} onClick={() => onOpenTerminal(node.name)} data-testid="open-terminal">
                Open terminal
              </Button>
              <Text size="xs" c="dimmed">
                a shell on the deployed node, through the hub over wg1 (needs a deploy of this cluster from this workspace)
              </Text>
            </Group>
          )}
          {live && <NodeLiveSection live={live} />}
          <Group gap="xs">
            <Badge>VMID {node.vmid}</Badge>
            <Badge variant="light">{node.domain}</Badge>
            <Badge variant="light" color={node.color === 'blue' ? 'blue' : 'green'}>
              LAN {node.lan.address}/{node.lan.prefix} ({node.color})
            </Badge>
            <Badge variant="outline">{node.lan.mac}</Badge>
          </Group>
          <section aria-label="VM shape">
            <Title order={6}>VM shape</Title>
            <Text size="sm">
              {node.vm.machine}, {node.vm.bios} (efidisk {node.vm.efidisk.pool}, {node.vm.efidisk.efitype}, pre-enrolled Secure Boot keys), TPM {node.vm.tpm.version}, guest agent on,{' '}
              {node.vm.cpu.cores} cores ({node.vm.cpu.type}), {node.vm.memoryMiB} MiB
            </Text>
            {node.vm.disks.map((d) => (
              <Text size="sm" key={d.index} ff="monospace">
                scsi{d.index}: {d.pool} {d.sizeGiB} GiB{d.discard ? ', discard' : ''}
                {d.iothread ? ', iothread' : ''}
              </Text>
            ))}
            {node.vm.nics.map((n) => (
              <Text size="sm" key={n.index} ff="monospace">
                net{n.index}: virtio {n.mac} on {n.bridge}
                {n.vlan !== undefined ? ` vlan ${n.vlan}` : ''}
              </Text>
            ))}
            <Text size="xs" c="dimmed">
              tags: {node.vm.tags.join(', ')}
            </Text>
          </section>
          <section aria-label="Plane addresses and peers">
            <Title order={6}>Planes</Title>
            <Table fz="xs" withTableBorder style={{ tableLayout: 'fixed' }}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th w={64}>plane</Table.Th>
                  <Table.Th w={140}>address</Table.Th>
                  <Table.Th w={100}>listen</Table.Th>
                  <Table.Th>peers (endpoint → allowed IPs)</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {[node.planes.wg1, node.planes.wg2, node.planes.wg3].map((p) => (
                  <Table.Tr key={p.plane}>
                    <Table.Td>{p.plane}</Table.Td>
                    <Table.Td ff="monospace">{p.address}</Table.Td>
                    <Table.Td>udp/{p.listenPort}</Table.Td>
                    <Table.Td ff="monospace" style={{ wordBreak: 'break-all' }}>
                      {p.peers.map((peer) => (
                        <div key={peer.node}>
                          {peer.node}
                          {peer.endpoint ? ` @ ${peer.endpoint}` : ''} → {peer.allowedIps.join(', ')}
                        </div>
                      ))}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </section>
          <section aria-label="Services">
            <Title order={6}>Services</Title>
            {node.services.map((s) => (
              <Text size="xs" key={`${s.name}${s.on}`}>
                <b>{s.name}</b> on {s.on} {s.ports.join(', ')} — {s.why}
              </Text>
            ))}
          </section>
          <section aria-label="Firewall rules">
            <Title order={6}>nftables</Title>
            <Code block fz="xs" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
              {node.nftables}
            </Code>
          </section>
        </Stack>
      )}
    </Drawer>
  );
}
