// Step 1: where to deploy. A Proxmox host from ~/.ssh/config (or typed), checked over SSH with
// the first-use host-key decision and the node's inventory; or local QEMU with a capacity check
// against the plan of the spec in the editor.
import { Alert, Badge, Button, Code, Group, Loader, SegmentedControl, Stack, Table, Text, TextInput, Title, UnstyledButton } from '@mantine/core';
import { IconKey, IconPlugConnected, IconServer } from '@tabler/icons-react';
import { useEffect } from 'react';
import { useStore } from 'zustand';
import type { TargetCheck } from '../../../common/contract/index';
import { checkTarget, loadTargets } from './actions';
import { CheckList } from './CheckList';
import { targetLabel, targetOf, wizardStore } from './store';
import { isHostName } from '../../../common/net/host-name';

const gib = (bytes: number): string => `${(bytes / 1024 ** 3).toFixed(1)} GiB`;

export function TargetStep() {
  const s = useStore(wizardStore);
  const check = s.check && s.checkedTarget === targetLabel(targetOf(s)) ? s.check : undefined;

  useEffect(() => {
    if (s.kind === 'proxmox' && !s.targets && !s.targetsError) void loadTargets();
    if (s.kind === 'qemu-local' && !check && !s.checking) void checkTarget();
    // Only when the kind changes: checks are otherwise started by the user.
  }, [s.kind]);

  const hostInvalid = s.kind === 'proxmox' && s.host.trim() !== '' && !isHostName(s.host.trim());
  return (
    <Stack gap="sm" data-testid="wizard-target" data-checking={s.checking}>
      <SegmentedControl
        value={s.kind}
        onChange={(v) => s.set({ kind: v as 'proxmox' | 'qemu-local' })}
        data={[
          { value: 'qemu-local', label: 'Local QEMU (this machine)' },
          { value: 'proxmox', label: 'Proxmox VE over SSH' },
        ]}
        aria-label="Target kind"
        data-testid="target-kind"
        w={460}
      />
      {s.kind === 'proxmox' ? (
        <>
          <Group align="flex-end" gap="xs">
            <TextInput
              label="Proxmox host"
              description="a Host alias from ~/.ssh/config, or a host name"
              placeholder="pve1"
              w={320}
              value={s.host}
              error={hostInvalid ? 'letters, digits, ".", "_", "-" only (for another user or port, add a Host entry to ~/.ssh/config)' : undefined}
              onChange={(e) => s.set({ host: e.currentTarget.value })}
              onKeyDown={(e) => e.key === 'Enter' && !hostInvalid && void checkTarget()}
              data-testid="target-host"
            />
            <Button leftSection={<IconPlugConnected size={16} />} onClick={() => void checkTarget()} disabled={!s.host.trim() || hostInvalid || s.checking} loading={s.checking} data-testid="check-target">
              Check connection
            </Button>
          </Group>
          <SshHosts />
        </>
      ) : (
        <Group gap="xs">
          <Text size="sm" c="dimmed" maw={760}>
            VMs run on this machine with qemu-system-x86_64 (KVM when a short test boot proves it works, TCG otherwise), OVMF with Secure Boot and a swtpm TPM, state in the cluster&apos;s workspace.
          </Text>
          <Button size="xs" variant="default" onClick={() => void checkTarget()} loading={s.checking} data-testid="check-target">
            Check capacity again
          </Button>
        </Group>
      )}
      {s.checkError && (
        <Alert color="red" title="The check could not run" data-testid="target-error">
          {s.checkError}
        </Alert>
      )}
      {s.checking && !check && (
        <Group gap="xs">
          <Loader size="xs" />
          <Text size="sm">{s.kind === 'proxmox' ? `connecting to ${s.host}…` : 'measuring this machine…'}</Text>
        </Group>
      )}
      {check && <CheckResult check={check} />}
    </Stack>
  );
}

function SshHosts() {
  const targets = useStore(wizardStore, (s) => s.targets);
  const error = useStore(wizardStore, (s) => s.targetsError);
  const host = useStore(wizardStore, (s) => s.host);
  if (error) return <Alert color="yellow">Could not read ~/.ssh/config: {error}</Alert>;
  if (!targets) return <Loader size="xs" />;
  return (
    <Stack gap={4} data-testid="ssh-hosts">
      <Text size="xs" c="dimmed">
        {targets.sshConfigExists ? `Hosts in ${targets.sshConfigPath}:` : `${targets.sshConfigPath} does not exist: type a host name (user, port and keys then come from the defaults).`}
      </Text>
      {targets.hosts.length > 0 && (
        <Group gap={6}>
          {targets.hosts.map((h) => (
            <UnstyledButton
              key={h.alias}
              onClick={() => {
                wizardStore.getState().set({ host: h.alias });
                void checkTarget();
              }}
              data-testid="ssh-host"
              data-alias={h.alias}
              aria-pressed={host === h.alias}
              px="sm"
              py={4}
              style={{ border: `1px solid ${host === h.alias ? 'var(--mantine-color-indigo-5)' : 'var(--mantine-color-default-border)'}`, borderRadius: 6 }}
            >
              <Group gap={6} wrap="nowrap">
                <IconServer size={14} />
                <Text size="sm" fw={600}>
                  {h.alias}
                </Text>
                <Text size="xs" c="dimmed" ff="monospace">
                  {h.user}@{h.hostName}:{h.port}
                  {h.jumps.length ? ` via ${h.jumps.join(' → ')}` : ''}
                </Text>
              </Group>
            </UnstyledButton>
          ))}
        </Group>
      )}
      {targets.problems.map((p) => (
        <Text key={p} size="xs" c="yellow">
          {p}
        </Text>
      ))}
    </Stack>
  );
}

function CheckResult({ check }: { check: TargetCheck }) {
  const checking = useStore(wizardStore, (s) => s.checking);
  const shortfalls = check.checks.filter((c) => c.status === 'error');
  const key = check.hostKey;
  return (
    <Stack gap="sm" data-testid="target-result" data-ready={check.ready}>
      {key?.status === 'unknown' && key.fingerprint && (
        <Alert color="yellow" icon={<IconKey size={18} />} title={`First connection to ${key.host}:${key.port}: is this the host's key?`} data-testid="host-key-prompt">
          <Stack gap={6}>
            <Text size="sm">
              {key.host}:{key.port} presents this {key.keyType} host key, which is not in {key.knownHostsPath}:
            </Text>
            <Code fz="md" data-testid="host-key-fingerprint">
              {key.fingerprint}
            </Code>
            <Text size="xs" c="dimmed">
              Compare it with what the host itself says (on the Proxmox host: <Code>ssh-keygen -lf /etc/ssh/ssh_host_{key.keyType?.replace(/^ssh-|-.*$/g, '')}_key.pub</Code>). Trusting it appends it to known_hosts; a different key later is refused.
            </Text>
            <Group gap="xs">
              <Button color="yellow" onClick={() => void checkTarget({ accept: key.fingerprint })} loading={checking} data-testid="accept-host-key">
                Trust this key and connect
              </Button>
              <Button variant="default" onClick={() => wizardStore.getState().set({ check: undefined, checkedTarget: undefined })} data-testid="reject-host-key">
                Do not trust
              </Button>
            </Group>
          </Stack>
        </Alert>
      )}
      {check.error && (
        <Alert color="red" title={key?.status === 'changed' ? 'Refused: the host key CHANGED' : key?.status === 'revoked' ? 'Refused: the host key is revoked' : `Cannot use ${check.target}`} data-testid="target-error">
          <Text size="sm">{check.error.message}</Text>
          {check.error.hint && (
            <Text size="sm" mt={4}>
              next: {check.error.hint}
            </Text>
          )}
        </Alert>
      )}
      {check.kind === 'qemu-local' && check.plan && (
        <Text size="sm" data-testid="plan-totals">
          Against <b>{check.plan.cluster}</b> (the spec open now): {check.plan.nodes} VMs, {check.plan.vcpus} vCPUs, {(check.plan.memoryMiB / 1024).toFixed(1)} GiB memory, {check.plan.diskGiB} GiB of disks. The review checks again for the spec you pick in step 2.
        </Text>
      )}
      {shortfalls.length > 0 && !check.error && (
        <Alert color="red" title={`${shortfalls.length} shortfall${shortfalls.length === 1 ? '' : 's'}`} data-testid="shortfalls">
          {shortfalls.map((c) => (
            <Text key={c.id} size="sm">
              <b>{c.label}</b>: {c.detail}
            </Text>
          ))}
        </Alert>
      )}
      {check.ready && (
        <Group gap="xs">
          <Badge color="green" data-testid="target-ready">
            {check.target} ready
          </Badge>
          {check.hostKey?.status === 'accepted' && <Badge color="yellow" variant="light">host key trusted and saved</Badge>}
        </Group>
      )}
      {check.kind === 'qemu-local' && check.checks.some((c) => c.action === 'probe-accel') && (
        <Group gap="xs">
          <Button size="xs" variant="default" onClick={() => void checkTarget({ probeAccel: true })} loading={checking} data-testid="probe-kvm">
            Test KVM now (up to 15 s)
          </Button>
        </Group>
      )}
      <CheckList checks={check.checks} testId="target-checks" />
      {check.inventory && check.kind === 'proxmox' && (
        <Stack gap={4}>
          <Title order={6}>Node {check.inventory.node}</Title>
          <Table fz="xs" verticalSpacing={2} data-testid="inventory-storages" aria-label="Storages">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>storage</Table.Th>
                <Table.Th>type</Table.Th>
                <Table.Th>free</Table.Th>
                <Table.Th>total</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {check.inventory.storages.map((st) => (
                <Table.Tr key={st.name}>
                  <Table.Td>{st.name}</Table.Td>
                  <Table.Td>{st.type}</Table.Td>
                  <Table.Td>{gib(st.availableBytes)}</Table.Td>
                  <Table.Td>{gib(st.totalBytes)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Text size="xs" c="dimmed">
            {check.inventory.vms.length} VM(s) on the node; {check.inventory.vms.filter((v) => v.inRange).length} in this cluster&apos;s VMID range ({check.inventory.vms.filter((v) => v.owned).length} ours).
          </Text>
        </Stack>
      )}
    </Stack>
  );
}
