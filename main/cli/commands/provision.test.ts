import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../main';

const dir = mkdtempSync(join(tmpdir(), 'kubedos-provision-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`), cwd: dir, env: { ...process.env, KUBEDOS_WORKSPACE: join(dir, 'ws') }, signal: new AbortController().signal, isTty: false });
  return { code, out, err };
}

describe('kubedos provision --dry-run', () => {
  it('against an unreachable Proxmox host: says it assumes an empty host and prints every qm command per node', async () => {
    expect((await cli(['init', '--template', 'lab-3', 'lab3.yaml'])).code).toBe(0);
    const r = await cli(['provision', 'lab3.yaml', '--dry-run', '--target', 'proxmox://root@127.0.0.1:1']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/not reachable .*assuming an EMPTY host/);
    for (const [node, vmid] of [['master', 3000], ['cp-1', 3001], ['w-1', 3002]] as const) {
      expect(r.out).toContain(`## ${node} (VMID ${vmid}): create + start`);
      expect(r.out).toMatch(new RegExp(`\\$ qm create ${vmid} --name ${node} --machine q35 --bios ovmf --efidisk0 local:1,efitype=4m,pre-enrolled-keys=1 --tpmstate0 local:1,version=v2.0 --agent enabled=1`));
      expect(r.out).toContain(`$ qm start ${vmid}`);
    }
    // Tags and boot order hold ';' and are quoted for the remote shell.
    expect(r.out).toMatch(/--tags 'artifact-0\.1\.0;cluster-lab-3;kubedos;role-master'/);
    expect(r.out).toContain('nothing was changed');
  });

  it('for qemu-local: the QEMU line carries Secure Boot firmware, TPM, the agent socket and the plan MAC', async () => {
    const r = await cli(['provision', 'lab3.yaml', '--dry-run', '--target', 'qemu-local']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('OVMF_CODE_4M.secboot.fd');
    expect(r.out).toContain('tpm-tis');
    expect(r.out).toContain('org.qemu.guest_agent.0');
    expect(r.out).toMatch(/virtio-net-pci,netdev=net0,mac=02:/);
  });

  it('rejects an unknown target with usage', async () => {
    const r = await cli(['provision', 'lab3.yaml', '--target', 'vmware://x']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown target');
  });
});
