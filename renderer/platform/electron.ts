// Transport 1 in the renderer: the preload's named functions, replies decoded and validated.
import type { EventChannel, EventOf, KubedosApi, PreloadBridge, RequestChannel, RequestOf, ResultOf } from '../../common/contract/index';
import { decodeEnvelope, parseEvent, parseResult } from '../../common/contract/index';

export function electronApi(bridge: PreloadBridge): KubedosApi {
  const call = (channel: RequestChannel, request: Record<string, unknown>): Promise<unknown> => {
    const r = request as Record<string, string | undefined>;
    switch (channel) {
      case 'app.info':
        return bridge.appInfo();
      case 'spec.parse':
        return bridge.parseSpec(r.text ?? '');
      case 'spec.templates':
        return bridge.listTemplates();
      case 'spec.template':
        return bridge.template(r.name ?? '');
      case 'spec.list':
        return bridge.listSpecs();
      case 'spec.open':
        return bridge.openSpec(r.path);
      case 'spec.save':
        return bridge.saveSpec(r.text ?? '', r.path);
      case 'plan.compute':
        return bridge.computePlan(r.text ?? '');
      case 'pipeline.run':
        return bridge.runPipeline((r.pipeline ?? 'plan') as 'plan', r.text ?? '', r.name);
      case 'pipeline.cancel':
        return bridge.cancelPipeline(r.runId ?? '');
      case 'deploy.targets':
        return bridge.deployTargets();
      case 'deploy.checkTarget':
        return bridge.checkDeployTarget(request as RequestOf<'deploy.checkTarget'>);
      case 'deploy.acceptHostKey':
        return bridge.acceptHostKey(request as RequestOf<'deploy.acceptHostKey'>);
      case 'deploy.review':
        return bridge.reviewDeploy(request as RequestOf<'deploy.review'>);
      case 'deploy.run':
        return bridge.runDeploy(request as RequestOf<'deploy.run'>);
    }
  };
  return {
    async invoke<C extends RequestChannel>(channel: C, request: RequestOf<C>): Promise<ResultOf<C>> {
      const envelope = await call(channel, request as Record<string, unknown>);
      return parseResult(channel, decodeEnvelope(envelope));
    },
    on<C extends EventChannel>(channel: C, listener: (payload: EventOf<C>) => void): () => void {
      const deliver = (payload: unknown): void => {
        try {
          listener(parseEvent(channel, payload));
        } catch (err) {
          console.error(`dropped a malformed ${channel} event from main:`, err);
        }
      };
      return channel === 'pipeline.events' ? bridge.onPipelineEvents(deliver) : bridge.onAppCommand(deliver);
    },
  };
}
