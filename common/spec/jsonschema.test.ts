import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterSpecJsonSchema, clusterSpecJsonSchemaText } from './jsonschema';

describe('ClusterSpec JSON Schema', () => {
  it('matches the checked-in copy (run `npm run schema` after changing the zod schema)', () => {
    const checkedIn = readFileSync(join(import.meta.dirname, 'clusterspec.schema.json'), 'utf8');
    expect(checkedIn).toBe(clusterSpecJsonSchemaText());
  });
  it('is generated from the input side: fields with defaults stay optional, unknown fields are refused', () => {
    const s = clusterSpecJsonSchema() as any;
    expect(s.additionalProperties).toBe(false);
    const lan = s.properties.spec.properties.networking.properties.lan;
    expect(lan.required).toEqual(['cidr']);
    expect(lan.properties.cidr.description).toMatch(/blue/);
  });
});
