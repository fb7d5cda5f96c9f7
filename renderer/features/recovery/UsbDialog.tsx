// The USB dialog: this machine's disks with the rule's verdict on each (kubedos usb list), then
// writing the cluster's portable stick through the engine's usb.write (the service behind
// `kubedos usb write`): a confirmation naming the disk and that it will be erased, live progress
// (phase, MB/s, ETA), stop, and the signed receipt; usb.verify reads a stick back against it.
import { Alert, Badge, Button, Checkbox, Code, Group, Modal, Progress, Radio, ScrollArea, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useEffect, useRef, useState } from 'react';
import { useStore } from 'zustand';
import type { UsbDeviceInfo, UsbReceiptView } from '../../../common/contract/index';
import { ConfirmAction } from '../../components/ConfirmAction';
import { api } from '../../shell/api';
import { progressText, usbStore } from './usb-store';

const size = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(0)} MB`);
const named = (d: { path: string; vendor?: string | undefined; model?: string | undefined; size: number }): string => `${d.path} (${[d.vendor, d.model].filter(Boolean).join(' ') || 'no model name'}, ${size(d.size)})`;

function Fact({ label, children, testid }: { label: string; children: React.ReactNode; testid?: string }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="sm" style={{ overflowWrap: 'anywhere' }} data-testid={testid}>
        {children}
      </Text>
    </div>
  );
}

function Receipt({ r, bad }: { r: UsbReceiptView; bad?: Set<number> }) {
  return (
    <Stack gap="xs" data-testid="usb-receipt">
      <SimpleGrid cols={2} spacing="xs">
        <Fact label="image sha256" testid="usb-receipt-digest">
          {r.imageSha256}
        </Fact>
        <Fact label="device">
          {named(r.device)}
          {r.device.serial ? `, serial ${r.device.serial}` : ''}
        </Fact>
        <Fact label="image">
          {size(r.imageSize)} · {r.workbench === 'cli' ? 'the kubedos CLI' : r.workbench} · capacity probe at {r.capacityProbeOffsets} offsets
        </Fact>
        <Fact label={`signed by the build key of ${r.cluster}`}>{r.signingKeyId}</Fact>
        <Fact label="receipt kept at">{r.path}</Fact>
      </SimpleGrid>
      <Table fz="xs" striped data-testid="usb-receipt-ranges">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>range</Table.Th>
            <Table.Th>bytes</Table.Th>
            <Table.Th>sha256</Table.Th>
            {bad && <Table.Th>read back</Table.Th>}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {r.ranges.map((x) => (
            <Table.Tr key={x.index} data-range={x.index}>
              <Table.Td>{x.index}</Table.Td>
              <Table.Td ff="monospace">
                {x.offset}–{x.offset + x.length - 1}
              </Table.Td>
              <Table.Td ff="monospace">{x.sha256.slice(0, 24)}…</Table.Td>
              {bad && <Table.Td>{bad.has(x.index) ? <Badge color="red">differs</Badge> : <Badge color="green">matches</Badge>}</Table.Td>}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

/** The disks of this machine; write the cluster's stick to one, or check one against its receipt. */
export function UsbDialog({ opened, onClose, cluster }: { opened: boolean; onClose: () => void; cluster: string }) {
  const [devices, setDevices] = useState<UsbDeviceInfo[] | { error: string } | undefined>();
  const [picked, setPicked] = useState<string | undefined>();
  const [force, setForce] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const s = useStore(usbStore);
  // A result or the progress bar appears below the disk list: bring it into view.
  const resultRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (s.outcome || s.busy) resultRef.current?.scrollIntoView({ block: 'nearest' });
  }, [s.outcome, s.busy !== undefined]);
  const reload = (): void => {
    setDevices(undefined);
    api()
      .invoke('usb.devices', {})
      .then((d) => setDevices(d))
      .catch((err: Error) => setDevices({ error: err.message }));
  };
  useEffect(() => {
    if (opened) reload();
  }, [opened]);
  const list = Array.isArray(devices) ? devices : [];
  const writable = list.filter((d) => d.refusals.length === 0);
  const dev = list.find((d) => d.path === picked);
  const mayWrite = dev !== undefined && (dev.refusals.length === 0 || (force && dev.forceable === true));
  const busy = s.busy !== undefined;

  const write = async (): Promise<void> => {
    if (!dev) return;
    setConfirming(false);
    usbStore.getState().start('write', dev.path);
    try {
      const result = await api().invoke('usb.write', { cluster, device: dev.path, ...(force ? { force } : {}) });
      usbStore.getState().end({ kind: 'written', device: dev.path, result });
    } catch (err) {
      const e = err as Error;
      const stopped = usbStore.getState().busy?.stopping === true;
      usbStore.getState().end(e.name === 'DeviceRefused' || /Nothing was written|nothing was written/.test(e.message) ? { kind: 'refused', op: 'write', device: dev.path, message: e.message } : { kind: 'failed', op: 'write', device: dev.path, message: e.message, stopped });
    }
    reload();
  };
  const verify = async (): Promise<void> => {
    if (!picked) return;
    usbStore.getState().start('verify', picked);
    try {
      const result = await api().invoke('usb.verify', { device: picked });
      usbStore.getState().end({ kind: 'verified', device: picked, result });
    } catch (err) {
      usbStore.getState().end({ kind: 'failed', op: 'verify', device: picked, message: (err as Error).message, stopped: usbStore.getState().busy?.stopping === true });
    }
  };
  const stop = (): void => {
    usbStore.getState().stopping();
    void api().invoke('usb.cancel', {});
  };
  const p = s.progress ? progressText(s.progress) : undefined;
  const o = s.outcome;

  return (
    <Modal opened={opened} onClose={() => !busy && onClose()} title="Carry it on a USB stick" size="xl" closeOnClickOutside={!busy} closeOnEscape={!busy} data-testid="usb-dialog" scrollAreaComponent={ScrollArea.Autosize}>
      <Stack gap="sm">
        <Text size="sm">
          The stick gets the build of <b>{cluster}</b> and its recovery bundle (both verified first), the kubedos CLI and a README. Every byte is read back; only a stick that reads back whole gets a signed receipt.
        </Text>
        {devices && 'error' in devices && (
          <Alert color="red" title="Could not list the disks">
            {devices.error}
          </Alert>
        )}
        {!devices && <Text size="sm">Reading the disks…</Text>}
        {Array.isArray(devices) && (
          <Text size="sm" data-testid="usb-summary">
            {writable.length ? `${writable.length} removable disk${writable.length === 1 ? '' : 's'} may be written.` : 'No disk here may be written: plug in a USB stick (a removable disk that is not mounted).'}
          </Text>
        )}
        {list.length > 0 && (
          <Radio.Group
            value={picked ?? null}
            onChange={(v) => {
              if (busy) return;
              setPicked(v);
              setConfirming(false);
              if (s.outcome && s.outcome.device !== v) usbStore.getState().clear();
            }}
          >
            <Table fz="xs" data-testid="usb-devices">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th />
                  <Table.Th>disk</Table.Th>
                  <Table.Th>size</Table.Th>
                  <Table.Th>model</Table.Th>
                  <Table.Th>may be written?</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {list.map((d) => (
                  <Table.Tr key={d.path} data-device={d.path}>
                    <Table.Td>
                      <Radio value={d.path} aria-label={`pick ${d.path}`} disabled={busy} />
                    </Table.Td>
                    <Table.Td ff="monospace">{d.path}</Table.Td>
                    <Table.Td style={{ whiteSpace: 'nowrap' }}>{size(d.size)}</Table.Td>
                    <Table.Td>{[d.vendor, d.model].filter(Boolean).join(' ') || '—'}</Table.Td>
                    <Table.Td>{d.refusals.length ? <Text size="xs" c="red">no: {d.refusals.join('; ')}</Text> : <Badge color="green">yes</Badge>}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Radio.Group>
        )}
        {dev?.forceable && (
          <Checkbox
            label={`${dev.path} is not a removable disk. Write it anyway: I am sure it is the stick (never a mounted disk or the system disk)`}
            checked={force}
            onChange={(e) => setForce(e.currentTarget.checked)}
            disabled={busy}
            data-testid="usb-force"
          />
        )}
        {dev && !mayWrite && !busy && (
          <Text size="sm" c="red" data-testid="usb-refusal">
            {dev.path} cannot be written: {dev.refusals.join('; ')}.
          </Text>
        )}
        {confirming && dev ? (
          <ConfirmAction inline opened title={`Erase ${named(dev)}?`} confirmLabel={`Erase ${dev.path} and write`} cancelLabel="Keep it" onConfirm={() => void write()} onCancel={() => setConfirming(false)} testId="usb-confirm" confirmTestId="usb-confirm-write">
            <Text size="sm">Everything on this disk will be erased and replaced by the portable stick of {cluster}. This cannot be undone.</Text>
          </ConfirmAction>
        ) : (
          <Group gap="xs">
            <Button color="red" variant="light" disabled={!mayWrite || busy} onClick={() => setConfirming(true)} data-testid="usb-write">
              Write the stick…
            </Button>
            <Button variant="default" disabled={!picked || busy} onClick={() => void verify()} data-testid="usb-verify">
              Check it against its receipt
            </Button>
            {busy && (
              <Button color="orange" variant="light" onClick={stop} disabled={s.busy?.stopping} data-testid="usb-stop">
                {s.busy?.stopping ? 'Stopping…' : 'Stop'}
              </Button>
            )}
          </Group>
        )}
        <div ref={resultRef} />
        {busy && (
          <Stack gap={4} data-testid="usb-progress">
            <Text size="sm" fw={500}>
              {s.busy?.op === 'write' ? `Writing ${s.busy.device}` : `Checking ${s.busy?.device}`}
            </Text>
            <Progress value={p?.percent ?? 0} animated striped={s.progress?.phase !== 'done'} />
            <Text size="xs" c="dimmed" data-testid="usb-progress-text" data-phase={s.progress?.phase ?? 'starting'}>
              {p?.label ?? (s.busy?.op === 'write' ? 'verifying the build and the bundle, making the stick image…' : 'reading the receipt…')}
            </Text>
          </Stack>
        )}
        {o?.kind === 'refused' && (
          <Alert color="orange" title={`${o.device} was not ${o.op === 'write' ? 'written' : 'checked'}`} data-testid="usb-outcome" data-outcome="refused" style={{ overflowWrap: 'anywhere' }}>
            {o.message}
          </Alert>
        )}
        {o?.kind === 'failed' && (
          <Alert color="red" title={o.op === 'write' ? `${o.device} is NOT a good stick${o.stopped ? ': the write was stopped' : ''}` : `${o.device} could not be checked`} data-testid="usb-outcome" data-outcome={o.stopped ? 'stopped' : 'failed'} style={{ overflowWrap: 'anywhere' }}>
            {o.message}
            {o.op === 'write' && <Text size="sm" mt={4}>It has no receipt and its partition table was erased first, so nothing will mistake it for a good stick. Write it again, or use another stick.</Text>}
          </Alert>
        )}
        {o?.kind === 'written' && (
          <Stack gap="xs">
            <Group justify="space-between">
              <Title order={5}>Written and read back: {o.device}</Title>
              <Badge color="green" data-testid="usb-outcome" data-outcome="written">
                good · {o.result.receipt.ranges.length} ranges match
              </Badge>
            </Group>
            <Text size="xs" c="dimmed">
              {((o.result.receipt.imageSize / 1e6) / (o.result.timings.totalMs / 1000)).toFixed(1)} MB/s overall · probe {(o.result.timings.probeMs / 1000).toFixed(1)} s · write with read-back {(o.result.timings.writeMs / 1000).toFixed(1)} s · last read-back {(o.result.timings.verifyTailMs / 1000).toFixed(1)} s
            </Text>
            <Receipt r={o.result.receipt} />
          </Stack>
        )}
        {o?.kind === 'verified' && (
          <Stack gap="xs">
            <Alert color={o.result.ok ? 'green' : 'red'} title={o.result.ok ? `${o.device} matches its receipt` : `${o.device} does NOT match its receipt`} data-testid="usb-outcome" data-outcome={o.result.ok ? 'verified' : 'differs'} style={{ overflowWrap: 'anywhere' }}>
              {o.result.summary}
            </Alert>
            {!o.result.identityMismatch && <Receipt r={o.result.receipt} bad={new Set(o.result.bad.map((b) => b.index))} />}
          </Stack>
        )}
        <Text size="xs" c="dimmed" data-testid="usb-cli">
          The same from a terminal: <Code>kubedos usb write {picked ?? '/dev/sdX'} --artifact BUILD_DIR --bundle BUNDLE_DIR</Code> and <Code>kubedos usb verify {picked ?? '/dev/sdX'}</Code>. Writing needs the workbench to run as root (or in the disk group).
        </Text>
      </Stack>
    </Modal>
  );
}
