// Counts in output: "1 node", "3 nodes". Pure.

/** "1 node", "3 nodes", "0 errors": a count with its noun, plural unless exactly one. */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}
