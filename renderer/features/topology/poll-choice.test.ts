import { describe, expect, it } from 'vitest';
import type { ChoiceStorage } from './poll-choice';
import { DEFAULT_POLL_CHOICE, loadPollChoice, POLL_CHOICE_KEY, savePollChoice } from './poll-choice';

const memory = (initial?: string): ChoiceStorage & { value?: string } => {
  const m: ChoiceStorage & { value?: string } = {
    getItem: () => m.value ?? null,
    setItem: (_k, v) => void (m.value = v),
  };
  if (initial !== undefined) m.value = initial;
  return m;
};

describe('the live health poll choice kept in the renderer storage', () => {
  it('round-trips the interval and the paused state under one key', () => {
    const s = memory();
    savePollChoice({ intervalS: 60, paused: true }, s);
    expect(JSON.parse(s.value!)).toEqual({ intervalS: 60, paused: true });
    expect(loadPollChoice(s)).toEqual({ intervalS: 60, paused: true });
    expect(POLL_CHOICE_KEY).toBe('kubedos.topology.livePoll');
  });

  it.each([
    ['nothing stored', undefined],
    ['not JSON', '{oops'],
    ['an interval the workbench does not offer', JSON.stringify({ intervalS: 7, paused: false })],
    ['a string interval', JSON.stringify({ intervalS: '15', paused: false })],
    ['a missing paused flag', JSON.stringify({ intervalS: 30 })],
    ['an unknown field', JSON.stringify({ intervalS: 30, paused: false, extra: 1 })],
    ['null', 'null'],
  ])('%s: the default (every 15 s, running)', (_why, stored) => {
    expect(loadPollChoice(memory(stored))).toEqual(DEFAULT_POLL_CHOICE);
    expect(DEFAULT_POLL_CHOICE).toEqual({ intervalS: 15, paused: false });
  });

  it('a storage that throws (disabled, full) is not remembered, and not an error', () => {
    const broken: ChoiceStorage = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    };
    expect(loadPollChoice(broken)).toEqual(DEFAULT_POLL_CHOICE);
    expect(() => savePollChoice({ intervalS: 5, paused: false }, broken)).not.toThrow();
    expect(loadPollChoice(undefined)).toEqual(DEFAULT_POLL_CHOICE);
  });
});
