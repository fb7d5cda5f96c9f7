// The node terminal's channels (terminal.open/input/resize/close → terminal.output/exit): a map
// of live sessions of the engine's terminal service, output through a FrameBatcher so a flood is
// a few dozen events a second. Thin: routing, pins and transcripts are in main/terminal/.
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { RequestParsed, ResultOf } from '../../common/contract/index';
import { parseSpec } from '../../common/spec/index';
import { FrameBatcher, openNodeTerminal } from '../terminal/index';
import type { TerminalSession } from '../terminal/index';
import { DeployRequestError } from '../deploy/service';
import type { Emit } from './workbench';

/** Sessions one workbench keeps open at once. */
export const MAX_TERMINALS = 8;

interface Live {
  session: TerminalSession;
  batcher: FrameBatcher;
}

export class TerminalBinding {
  private readonly live = new Map<string, Live>();

  constructor(
    private readonly emit: Emit,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  async open(r: RequestParsed<'terminal.open'>): Promise<ResultOf<'terminal.open'>> {
    if (this.live.size >= MAX_TERMINALS) throw new DeployRequestError('terminal.busy', `${this.live.size} terminals are open; the workbench keeps at most ${MAX_TERMINALS}`, 'close one, then open again');
    const { spec, diagnostics } = parseSpec(r.text);
    if (!spec) throw new DeployRequestError('terminal.invalid-spec', `the spec does not validate (${diagnostics.length} problems; first: ${diagnostics[0]?.message ?? '?'})`, 'fix it in the Spec view first');
    const id = randomBytes(8).toString('hex');
    const decoder = new StringDecoder('utf8');
    const batcher = new FrameBatcher((frame) => {
      const data = decoder.write(frame);
      if (data) this.emit('terminal.output', { id, data });
    });
    try {
      const { session, route, transcriptFile } = await openNodeTerminal({
        spec,
        node: r.node,
        env: this.env,
        size: { cols: r.cols, rows: r.rows },
        ...(r.via ? { via: r.via } : {}),
        onData: (b) => batcher.push(b),
      });
      this.live.set(id, { session, batcher });
      const user = spec.spec.security.ssh.allowUsers[0]!;
      void session.exited.then((exit) => {
        batcher.flush();
        const rest = decoder.end();
        if (rest) this.emit('terminal.output', { id, data: rest });
        this.live.delete(id);
        this.emit('terminal.exit', {
          id,
          exitCode: exit.exitCode,
          ...(exit.signal ? { signal: exit.signal } : {}),
          ...(exit.transcript ? { transcript: { file: exit.transcript.file, sha256: exit.transcript.sha256, bytes: exit.transcript.bytes } } : {}),
        });
      });
      const hops = [route.hub, ...(route.target ? [route.target] : [])].map((h) => `${user}@${h.host}:${h.port}`);
      return { id, node: r.node, hops, ...(transcriptFile ? { transcriptFile } : {}) };
    } catch (err) {
      throw new DeployRequestError('terminal.open', (err as Error).message);
    }
  }

  private get(id: string): Live | undefined {
    return this.live.get(id);
  }

  input(r: RequestParsed<'terminal.input'>): ResultOf<'terminal.input'> {
    const l = this.get(r.id);
    l?.session.write(r.data);
    return { ok: Boolean(l) };
  }

  resize(r: RequestParsed<'terminal.resize'>): ResultOf<'terminal.resize'> {
    const l = this.get(r.id);
    l?.session.resize({ cols: r.cols, rows: r.rows });
    return { ok: Boolean(l) };
  }

  close(r: RequestParsed<'terminal.close'>): ResultOf<'terminal.close'> {
    const l = this.get(r.id);
    l?.session.close();
    return { ok: Boolean(l) };
  }

  async dispose(): Promise<void> {
    const all = [...this.live.values()];
    for (const l of all) l.session.close();
    await Promise.allSettled(all.map((l) => l.session.exited));
  }
}
