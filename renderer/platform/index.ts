// Picks the transport: Electron's preload (`window.kubedos`) or the WebSocket bridge of
// `kubedos serve` (session cookie from the printed URL). Both end up as the same typed KubedosApi, and
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
  // `kubedos serve` exchanged the printed URL's one-time token for an HttpOnly session cookie and
  // redirected here without it: the browser sends that cookie with the socket request.
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  return connectWebSocket(`${scheme}://${window.location.host}/bridge`);
}
