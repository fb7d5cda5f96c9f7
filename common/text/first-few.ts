// Bounded lists in messages: "a, b, c … and 4 more". Pure.

/** Up to n items joined (by `sep`: items that hold commas themselves take '; '), with "… and K more". */
export function firstFew(items: readonly string[], n = 5, sep = ', '): string {
  return items.length <= n ? items.join(sep) : `${items.slice(0, n).join(sep)} … and ${items.length - n} more`;
}
