// The node terminal service, used by `kubedos ssh` and the workbench's Terminal panel: the route
// and pins from the workspace, the operator key from the SecretStore, a transcript in the
// workspace, one TerminalSession.
import type { ClusterSpec } from '../../common/spec/index';
import { plan } from '../../common/plan/index';
import { readOpsPrivateKey } from '../build/keys';
import { clusterWorkspace } from '../workspace';
import type { TerminalRoute } from './pins';
import { terminalRoute } from './pins';
import type { OpenTerminalOptions, TerminalSize } from './session';
import { TerminalSession } from './session';
import { TranscriptWriter } from './transcript';

export { hostKeyFingerprint, terminalRoute, TerminalTrustError } from './pins';
export type { PinnedHop, TerminalRoute } from './pins';
export { TerminalError, TerminalSession } from './session';
export type { TerminalExit, TerminalSize } from './session';
export { readTranscriptRecords, TranscriptRecord, TranscriptWriter } from './transcript';
export { FrameBatcher } from './frames';

export interface NodeTerminalRequest {
  spec: ClusterSpec;
  node: string;
  env: NodeJS.ProcessEnv;
  /** Reach the hub at this address instead of the LAN address first boot recorded. */
  via?: string;
  port?: number;
  size?: TerminalSize;
  command?: string;
  signal?: AbortSignal;
  /** Record a transcript (default true). */
  transcript?: boolean;
  onData: OpenTerminalOptions['onData'];
}

/** Opens a shell (or runs `command`) on a node of a deployed cluster, through the hub over wg1. */
export async function openNodeTerminal(r: NodeTerminalRequest): Promise<{ session: TerminalSession; route: TerminalRoute; transcriptFile?: string }> {
  const workspace = clusterWorkspace(r.spec.metadata.name, r.env);
  const route = terminalRoute(workspace, plan(r.spec), r.node, { ...(r.via ? { hubAddress: r.via } : {}), ...(r.port ? { port: r.port } : {}) });
  const privateKey = await readOpsPrivateKey(r.spec.metadata.name, r.env);
  const user = r.spec.spec.security.ssh.allowUsers[0]!;
  const transcript = r.transcript === false ? undefined : new TranscriptWriter(workspace, r.node, r.command);
  const session = await TerminalSession.open({
    route,
    user,
    privateKey,
    ...(r.size ? { size: r.size } : {}),
    ...(r.command !== undefined ? { command: r.command } : {}),
    ...(r.signal ? { signal: r.signal } : {}),
    ...(transcript ? { transcript } : {}),
    onData: r.onData,
  });
  return { session, route, ...(transcript ? { transcriptFile: transcript.file } : {}) };
}
