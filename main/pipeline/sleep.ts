// The one abortable wait of the engine: resolves after ms, rejects with Error('cancelled') as soon
// as the signal aborts (and never leaves a timer or a listener behind).
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('cancelled'));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Error('cancelled'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
