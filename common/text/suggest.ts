// "Did you mean": the closest known word to a mistyped one. One rule for every suggestion the
// product makes (CLI commands, flags, template names, spec keys): optimal-string-alignment
// Damerau-Levenshtein distance (insert, delete, substitute, swap two neighbours), case-insensitive,
// accepted up to max(2, a third of the word's length). Pure.

/** Edits to turn `a` into `b`, a swap of two adjacent characters counting as one edit. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  // Three rows: i-2, i-1, i.
  let before = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      cur[j] = d;
    }
    [before, prev, cur] = [prev, cur, before];
  }
  return prev[b.length]!;
}

/** The largest distance still taken for a typo of `word`. */
export function maxTypoDistance(word: string): number {
  return Math.max(2, Math.floor(word.length / 3));
}

/**
 * The candidate closest to `word` (ties: the first in `candidates`' order), or undefined when
 * none is within maxTypoDistance(word). A candidate that starts with the word (an abbreviation,
 * "--tar" for "--target") is taken when it is the only one that does.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  if (best !== undefined && bestDistance <= maxTypoDistance(word)) return best;
  const prefixed = w.length >= 2 ? candidates.filter((c) => c.toLowerCase().startsWith(w)) : [];
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** "; did you mean X?" or "" — for appending to an error line. */
export function didYouMean(word: string, candidates: readonly string[], format: (s: string) => string = (s) => s): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `; did you mean ${format(c)}?`;
}
