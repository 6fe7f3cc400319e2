import { describe, expect, it } from 'vitest';
import { chinaDay } from '../../functions/retry/retry-order.ts';

describe('the China calendar day that daily re-push limits count in', () => {
  it('is the UTC date while it is still the same day in China', () => {
    const day = chinaDay(new Date('2026-11-22T10:00:00Z'));
    expect(day.date).toBe('2026-11-22');
    expect(day.secondsToMidnight).toBe(6 * 3600);
  });

  it('is already the next date once UTC reaches 16:00', () => {
    const day = chinaDay(new Date('2026-11-22T16:30:00Z'));
    expect(day.date).toBe('2026-11-23');
    expect(day.secondsToMidnight).toBe(23 * 3600 + 30 * 60);
  });

  it('counts the seconds to midnight in China', () => {
    expect(chinaDay(new Date('2026-11-22T15:59:00Z')).secondsToMidnight).toBe(60);
  });

  it('rounds the last fraction of a second up to one second', () => {
    const day = chinaDay(new Date('2026-11-22T15:59:59.999Z'));
    expect(day.date).toBe('2026-11-22');
    expect(day.secondsToMidnight).toBe(1);
  });

  it('starts a full day at midnight in China', () => {
    const day = chinaDay(new Date('2026-11-22T16:00:00Z'));
    expect(day.date).toBe('2026-11-23');
    expect(day.secondsToMidnight).toBe(24 * 3600);
  });

  it('forgets the day a full day after its midnight in China', () => {
    expect(chinaDay(new Date('2026-11-22T15:59:00Z')).forgetAt).toEqual(new Date('2026-11-23T16:00:00Z'));
    expect(chinaDay(new Date('2026-11-22T16:30:00Z')).forgetAt).toEqual(new Date('2026-11-24T16:00:00Z'));
  });

  it('crosses the end of a month and of a year', () => {
    const day = chinaDay(new Date('2026-12-31T18:00:00Z'));
    expect(day.date).toBe('2027-01-01');
    expect(day.forgetAt).toEqual(new Date('2027-01-02T16:00:00Z'));
  });
});
