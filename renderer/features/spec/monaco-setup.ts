// Monaco + monaco-yaml, bundled locally (no CDN loader). monaco-editor 0.57 moved the worker
// factory monaco-yaml 5.5 expects: hand monaco-yaml a monaco object whose
// editor.createWebWorker is the legacy one from monaco-editor/internal/common/workers, else
// "Could not create web worker(s)" / "Missing requestHandler or method: doValidation".
// Workers come from Vite `?worker` imports; schema requests are off (the schema is inline).
import * as monaco from 'monaco-editor';
import { createWebWorker } from 'monaco-editor/internal/common/workers';
import EditorWorker from 'monaco-editor/esm/vs/editor/editor.worker.js?worker';
import { configureMonacoYaml } from 'monaco-yaml';
import YamlWorker from 'monaco-yaml/yaml.worker.js?worker';
import clusterSpecSchema from '../../../common/spec/clusterspec.schema.json';

/** Stable schema URI (monaco-yaml FAQ): hover docs show it as the source. */
export const SCHEMA_URI = 'kubedos://schema/clusterspec.schema.json';
export const MODEL_URI = monaco.Uri.parse('kubedos://spec/cluster.yaml');

let configured = false;

export function setupMonaco(): typeof monaco {
  if (configured) return monaco;
  configured = true;
  (globalThis as unknown as { MonacoEnvironment: unknown }).MonacoEnvironment = {
    getWorker(_moduleId: string, label: string): Worker {
      return label === 'yaml' ? new YamlWorker() : new EditorWorker();
    },
  };
  const withLegacyWorkers = { ...monaco, editor: { ...monaco.editor, createWebWorker } };
  configureMonacoYaml(withLegacyWorkers as unknown as typeof monaco, {
    enableSchemaRequest: false,
    validate: true,
    completion: true,
    hover: true,
    format: { enable: true },
    schemas: [{ uri: SCHEMA_URI, fileMatch: [MODEL_URI.toString()], schema: clusterSpecSchema as never }],
  });
  return monaco;
}

export type Monaco = typeof monaco;
