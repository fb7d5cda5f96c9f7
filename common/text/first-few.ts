// Bounded lists in messages: "a, b, c … and 4 more". Pure.

/** Up to n items joined, with "… and K more". */
export function firstFew(items: readonly string[], n = 5): string {
  return items.length <= n ? items.join(', ') : `${items.slice(0, n).join(', ')} … and ${items.length - n} more`;
}
