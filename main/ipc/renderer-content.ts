// How the built renderer is served, whichever transport serves it (the Electron kubedos://
// scheme or the WebSocket bridge's HTTP server): one CSP and one MIME table.

/** The renderer's CSP. Monaco's editor and YAML workers are bundled files started with
 * `new Worker(url)`; Chromium may wrap them in blob: URLs, hence worker-src blob:. No
 * unsafe-eval, no remote origins. Inline styles: Mantine and Monaco inject <style> elements.
 * `connect` lists what the page may connect to besides its own origin. */
export function rendererCsp(connect: readonly string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "worker-src 'self' blob:",
    ["connect-src 'self'", ...connect].join(' '),
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export const RENDERER_MIME: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};
