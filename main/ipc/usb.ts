// The workbench's binding of the USB service (main/usb/index.ts): the same usbWrite / usbVerify as
// `kubedos usb write|verify`, progress streamed on usb.progress, one write or verify at a time,
// cancellable. The artifact and the bundle written are the cluster's own (its workspace's build/
// and bundle/); the receipt is kept where the CLI keeps it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestParsed, UsbProgressEvent, UsbReceiptView, UsbVerifyOutcome, UsbWriteOutcome } from '../../common/contract/index';
import { DeployRequestError } from '../deploy/service';
import type { DeviceSource, UsbProgress, UsbReceipt, UsbWriteInput } from '../usb/index';
import { describeBad, describeDevice, usbVerify, usbWrite } from '../usb/index';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';

export interface UsbBinding {
  env: NodeJS.ProcessEnv;
  emit: (e: UsbProgressEvent) => void;
  /** The device list (default: lsblk). The browser UI test passes loop devices shown as sticks. */
  source?: DeviceSource;
  /** Passed to usbWrite (the browser UI test holds a write there to see it mid-way and stop it). */
  afterBytes?: UsbWriteInput['afterBytes'];
  controller?: AbortController;
}

function receiptView(path: string, r: UsbReceipt): UsbReceiptView {
  const { logicalSectorSize: _s, ...device } = r.device;
  return {
    path,
    cluster: r.cluster,
    imageSha256: r.image.sha256,
    imageSize: r.image.size,
    workbench: r.image.workbench,
    device,
    rangeSize: r.rangeSize,
    ranges: r.ranges,
    signingKeyId: r.signingKeyId,
    capacityProbeOffsets: r.checks.capacityProbe.offsets,
  };
}

async function exclusive<T>(b: UsbBinding, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (b.controller) throw new DeployRequestError('usb.busy', 'a stick is being written or checked in this workbench already', 'wait for it to end or stop it');
  const controller = new AbortController();
  b.controller = controller;
  try {
    return await fn(controller.signal);
  } finally {
    b.controller = undefined;
  }
}

const progress = (b: UsbBinding, op: UsbProgressEvent['op'], device: string) => (p: UsbProgress) =>
  b.emit({ op, device, phase: p.phase, written: p.written, verified: p.verified, total: p.total, mbPerSec: p.mbPerSec, ...(p.etaSeconds !== undefined && Number.isFinite(p.etaSeconds) ? { etaSeconds: Math.max(0, p.etaSeconds) } : {}) });

export async function usbWriteRun(b: UsbBinding, r: RequestParsed<'usb.write'>): Promise<UsbWriteOutcome> {
  const ws = clusterWorkspace(r.cluster, b.env);
  const artifact = join(ws, WORKSPACE_LAYOUT.build);
  const bundle = join(ws, WORKSPACE_LAYOUT.bundle);
  const have = [existsSync(join(artifact, 'manifest.json')) && artifact, existsSync(join(bundle, 'bundle.json')) && bundle];
  if (!have[0] && !have[1]) throw new DeployRequestError('usb.nothing', `${r.cluster} has neither a build (${artifact}) nor a recovery bundle (${bundle}): there is nothing to put on a stick; nothing was written`, 'deploy the cluster first (its build and seal stages make them)');
  return exclusive(b, async (signal) => {
    const w = await usbWrite({
      device: r.device,
      ...(have[0] ? { artifact } : {}),
      ...(have[1] ? { bundle } : {}),
      force: r.force ?? false,
      env: b.env,
      signal,
      onProgress: progress(b, 'write', r.device),
      ...(b.source ? { source: b.source } : {}),
      ...(b.afterBytes ? { afterBytes: b.afterBytes } : {}),
    });
    return { receipt: receiptView(w.receiptPath, w.receipt), timings: w.timings };
  });
}

export async function usbVerifyRun(b: UsbBinding, r: RequestParsed<'usb.verify'>): Promise<UsbVerifyOutcome> {
  return exclusive(b, async (signal) => {
    const v = await usbVerify({ device: r.device, env: b.env, signal, onProgress: progress(b, 'verify', r.device), ...(b.source ? { source: b.source } : {}) });
    const summary = v.identityMismatch ?? (v.ok ? `${describeDevice(v.device)}: ${v.checked} ranges match the receipt` : `${describeDevice(v.device)}: ${describeBad(v.bad)}`);
    return { ok: v.ok && !v.identityMismatch, checked: v.checked, bad: v.bad, summary, ...(v.identityMismatch ? { identityMismatch: v.identityMismatch } : {}), receipt: receiptView(v.receiptPath, v.receipt), keyid: v.keyid };
  });
}

export function usbCancel(b: UsbBinding): { cancelled: boolean } {
  if (!b.controller) return { cancelled: false };
  b.controller.abort(new Error('stopped from the workbench'));
  return { cancelled: true };
}
