/** An error's message, or the thrown value as text (what a one-line report quotes). */
export const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
