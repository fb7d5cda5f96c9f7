// What the converge stage leaves on each node for kubedos-node-metrics (kubedos_converge_info):
// its own fingerprint of the last converge, written through the guest agent only when it changed;
// a node that cannot be written is a warning, never a failed converge.
import { describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { CONVERGE_RECORD_ON_NODE, ConvergeRecordOnNode, renderConvergeRecordOnNode } from '../../common/drills/watcher';
import type { SubstrateDriver } from '../substrate/driver';
import { recordOnNodes } from './converge';

const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
const vmid = (name: string) => p.nodes.find((n) => n.name === name)!.vmid;
const fp = (c: string) => c.repeat(64);

describe('the converge record on each node', () => {
  it('writes a changed record, leaves an unchanged one, skips a node without a fingerprint, and warns for one it cannot write', async () => {
    const files = new Map<number, string>([[vmid('master'), renderConvergeRecordOnNode({ runId: 'run-2', node: 'master', fingerprint: fp('a') })]]);
    const writes: [number, string, number | undefined][] = [];
    const driver = {
      guestFileRead: async (id: number, path: string) => {
        expect(path).toBe(CONVERGE_RECORD_ON_NODE);
        const f = files.get(id);
        if (f === undefined) throw new Error('No such file or directory');
        return Buffer.from(f);
      },
      guestFileWrite: async (id: number, path: string, data: string, o: { mode?: number }) => {
        if (id === vmid('w-1')) throw new Error('guest agent did not answer');
        writes.push([id, path, o.mode]);
        files.set(id, data);
      },
    } as unknown as SubstrateDriver;
    const logs: string[] = [];
    const s = { signal: new AbortController().signal, log: (l: string) => logs.push(l) };
    await recordOnNodes(s, driver, p, 'run-2', { master: fp('a'), 'cp-1': fp('b'), 'w-1': fp('c') });
    expect(writes).toEqual([[vmid('cp-1'), CONVERGE_RECORD_ON_NODE, 0o644]]);
    expect(ConvergeRecordOnNode.parse(JSON.parse(files.get(vmid('cp-1'))!))).toEqual({ runId: 'run-2', node: 'cp-1', fingerprint: fp('b') });
    expect(logs).toEqual([expect.stringMatching(/^w-1: converge record for the node metrics not written \(w-1: writing \/var\/lib\/kubedos\/converge\/node\.json through the guest agent failed: guest agent did not answer\)$/)]);
    // A node left out of the fingerprints (its probe failed) is not touched.
    writes.length = 0;
    await recordOnNodes(s, driver, p, 'run-3', { 'cp-1': fp('b') });
    expect(writes).toEqual([[vmid('cp-1'), CONVERGE_RECORD_ON_NODE, 0o644]]);
  });
});
