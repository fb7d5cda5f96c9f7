// Picks the transport: Electron's preload (`window.kubedos`) or the WebSocket bridge of
// `kubedos serve` (token from the page URL). Both end up as the same typed KubedosApi, and
// both validate every reply and event against the contract before the app sees it.
import type { KubedosApi, PreloadBridge } from '../../common/contract/index';
import { electronApi } from './electron';
import { connectWebSocket } from './websocket';

declare global {
  interface Window {
    kubedos?: PreloadBridge;
  }
}

export async function connectPlatform(): Promise<KubedosApi> {
  if (window.kubedos?.transport === 'electron') return electronApi(window.kubedos);
  const token = new URLSearchParams(window.location.search).get('token') ?? new URLSearchParams(window.location.hash.slice(1)).get('token');
  if (!token) throw new Error('no bridge token in the URL: open the exact URL that `kubedos serve` printed (it ends in ?token=…)');
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  return connectWebSocket(`${scheme}://${window.location.host}/bridge?token=${encodeURIComponent(token)}`);
}
