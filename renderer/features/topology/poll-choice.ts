// The live health's read interval and paused state, remembered across reloads and restarts of the
// workbench the way its colour scheme is (Mantine keeps that in the renderer's localStorage: the
// Electron window and the `kubedos serve` page each keep their own). What is stored is checked
// (zod) on the way in: a value another version wrote, or a hand-edited one, falls back to the
// default instead of breaking the view.
import { z } from 'zod';
import { HEALTH_POLL_CHOICES_S, HEALTH_POLL_DEFAULT_S } from '../../../common/health/poll';

export const POLL_CHOICE_KEY = 'kubedos.topology.livePoll';

const PollChoice = z
  .object({
    intervalS: z.number().refine((s) => (HEALTH_POLL_CHOICES_S as readonly number[]).includes(s), 'not an interval the workbench offers'),
    paused: z.boolean(),
  })
  .strict();
export type PollChoice = z.infer<typeof PollChoice>;

export const DEFAULT_POLL_CHOICE: PollChoice = { intervalS: HEALTH_POLL_DEFAULT_S, paused: false };

/** The part of the Web Storage API used here (tests pass a map). */
export type ChoiceStorage = Pick<Storage, 'getItem' | 'setItem'>;

const storage = (): ChoiceStorage | undefined => {
  try {
    return typeof localStorage === 'undefined' ? undefined : localStorage;
  } catch {
    return undefined; // storage refused (a sandboxed page): nothing is remembered
  }
};

/** The stored choice, or the default when there is none or it is not a valid one. */
export function loadPollChoice(s: ChoiceStorage | undefined = storage()): PollChoice {
  try {
    const raw = s?.getItem(POLL_CHOICE_KEY);
    if (!raw) return { ...DEFAULT_POLL_CHOICE };
    const parsed = PollChoice.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : { ...DEFAULT_POLL_CHOICE };
  } catch {
    return { ...DEFAULT_POLL_CHOICE };
  }
}

/** Keeps the choice; a storage that refuses (full, disabled) only means it is not remembered. */
export function savePollChoice(c: PollChoice, s: ChoiceStorage | undefined = storage()): void {
  try {
    s?.setItem(POLL_CHOICE_KEY, JSON.stringify(PollChoice.parse(c)));
  } catch {
    // not remembered; the choice still holds until the window closes
  }
}
