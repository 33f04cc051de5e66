// R-WEB-9, R-ACC-3: money from decimal strings per locale, never through floating point.
import { describe, expect, it } from 'vitest';
import { addDays, dayIn, daysBetween, formatDay, formatMoney, fromCents, toCents } from './format';

const nbsp = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ');

describe('money', () => {
  it('parses and prints cents exactly', () => {
    expect(toCents('-12.05')).toBe(-1205n);
    expect(toCents('35.00')).toBe(3500n);
    expect(toCents('0.10')).toBe(10n);
    expect(fromCents(-1205n)).toBe('-12.05');
    expect(fromCents(7n)).toBe('0.07');
    // 0.1 + 0.2 in floating point is 0.30000000000000004; in cents it is 30.
    expect(fromCents(toCents('0.10') + toCents('0.20'))).toBe('0.30');
    expect(() => toCents('12.345')).toThrow();
  });

  it('formats per language', () => {
    expect(formatMoney('1234.50', 'en')).toBe('$1,234.50');
    expect(formatMoney('-12.00', 'en')).toBe('-$12.00');
    expect(nbsp(formatMoney('1234.50', 'ru'))).toBe('1 234,50 $');
    // Beyond float precision: a decimal string stays exact.
    expect(formatMoney('90071992547409.93', 'en')).toBe('$90,071,992,547,409.93');
  });
});

describe('business days', () => {
  it('computes the date in a timezone (R-ACC-7)', () => {
    const t = new Date('2026-12-07T23:30:00Z');
    expect(dayIn('UTC', t)).toBe('2026-12-07');
    expect(dayIn('Europe/Moscow', t)).toBe('2026-12-08');
    expect(dayIn('America/New_York', t)).toBe('2026-12-07');
  });

  it('adds days across months and years', () => {
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2026-12-07', -29)).toBe('2026-11-08');
    expect(daysBetween('2026-11-08', '2026-12-07')).toBe(29);
  });

  it('formats a day per language without shifting it', () => {
    expect(formatDay('2026-12-07', 'en')).toBe('Dec 7, 2026');
    expect(nbsp(formatDay('2026-12-07', 'ru'))).toBe('7 дек. 2026 г.');
  });
});
