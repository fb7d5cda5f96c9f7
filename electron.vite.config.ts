// electron-vite build: Electron main (ESM), the preload (ONE CommonJS file, because a sandboxed
// preload cannot load ES modules or node_modules), and the renderer (React, Monaco and its
// workers bundled locally — nothing is fetched from a CDN at run time).
import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'electron-vite';

const root = import.meta.dirname;

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      externalizeDeps: true,
      lib: { entry: resolve(root, 'main/index.ts'), formats: ['es'] },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      // Bundle everything it imports (only the channel constants) into the one file.
      externalizeDeps: false,
      lib: { entry: resolve(root, 'preload/index.ts'), formats: ['cjs'] },
      rolldownOptions: { external: ['electron'], output: { format: 'cjs', entryFileNames: 'index.cjs', codeSplitting: false } },
    },
  },
  renderer: {
    root: resolve(root, 'renderer'),
    base: './',
    plugins: [react()],
    resolve: {
      alias: [
        // monaco-yaml's worker (via monaco-worker-manager) imports
        // `monaco-editor/esm/vs/editor/editor.worker.js`, which monaco-editor 0.57's export map
        // no longer resolves: point deep esm/vs imports at the files themselves.
        { find: /^monaco-editor\/esm\/vs\/(.*)$/, replacement: `${resolve(root, 'node_modules/monaco-editor/esm/vs')}/$1` },
      ],
    },
    worker: { format: 'es' },
    build: {
      outDir: resolve(root, 'out/renderer'),
      emptyOutDir: true,
      chunkSizeWarningLimit: 8000,
      rolldownOptions: { input: resolve(root, 'renderer/index.html') },
    },
  },
});
