// The connected KubedosApi, set once at start-up (see main.tsx).
import type { KubedosApi } from '../../common/contract/index';

let current: KubedosApi | undefined;

export function setApi(api: KubedosApi): void {
  current = api;
}

export function api(): KubedosApi {
  if (!current) throw new Error('not connected to the engine yet');
  return current;
}
