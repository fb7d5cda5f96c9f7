// JSON Schema for editors (monaco-yaml), generated from the zod schema's input side so fields
// with defaults stay optional. The checked-in copy is compared against this in a test.
import { z } from 'zod';
import { ClusterSpec } from './schema';

export const CLUSTERSPEC_SCHEMA_ID = 'https://kubedos.ca/schemas/clusterspec-v1alpha1.json';

export function clusterSpecJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ClusterSpec, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, $id: CLUSTERSPEC_SCHEMA_ID, title: "Kube'd'OS ClusterSpec" };
}

export function clusterSpecJsonSchemaText(): string {
  return `${JSON.stringify(clusterSpecJsonSchema(), null, 2)}\n`;
}
