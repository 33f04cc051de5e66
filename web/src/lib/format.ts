// Money, dates and business days per language (R-WEB-9). Money is the API's decimal string of
// dollars: it is formatted from the string itself (Intl formats decimal strings exactly) and
// added up in integer cents, never through floating point.

/** "-12.05" → -1205n. */
export function toCents(money: string): bigint {
  const m = /^(-)?(\d+)(?:\.(\d{1,2}))?$/.exec(money.trim());
  if (!m) throw new Error(`not a Money value: ${money}`);
  const cents = BigInt(m[2]) * 100n + BigInt((m[3] ?? '').padEnd(2, '0') || '0');
  return m[1] ? -cents : cents;
}

/** -1205n → "-12.05". */
export function fromCents(c: bigint): string {
  const neg = c < 0n;
  const a = neg ? -c : c;
  return `${neg ? '-' : ''}${a / 100n}.${(a % 100n).toString().padStart(2, '0')}`;
}

// Intl formatters are costly to make (a board of 100 rows formats 300 values): one per kind and language.
const formatters = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat>();
function cached<T extends Intl.NumberFormat | Intl.DateTimeFormat>(key: string, make: () => T): T {
  let f = formatters.get(key) as T | undefined;
  if (!f) formatters.set(key, (f = make()));
  return f;
}

/** Dollars per locale: "$1,234.50" in English, "1 234,50 $" in Russian. */
export function formatMoney(money: string, lang: string): string {
  const nf = cached(`money|${lang}`, () => new Intl.NumberFormat(lang, { style: 'currency', currency: 'USD', currencyDisplay: 'narrowSymbol' }));
  // A decimal string is formatted exactly (Intl.NumberFormat v3); toCents validates it first.
  return nf.format(fromCents(toCents(money)) as Intl.StringNumericLiteral);
}

/** A chart's y value: dollars as a number, for drawing only (labels use formatMoney). */
export function chartValue(money: string): number {
  return Number(toCents(money)) / 100;
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

function dayToUTC(day: string): Date {
  const m = DAY.exec(day);
  if (!m) throw new Error(`not a Date value: ${day}`);
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
}

function utcToDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The day n days after day (n may be negative). */
export function addDays(day: string, n: number): string {
  const d = dayToUTC(day);
  d.setUTCDate(d.getUTCDate() + n);
  return utcToDay(d);
}

/** The calendar date in timeZone at the instant now (R-ACC-7). */
export function dayIn(timeZone: string, now: Date = new Date()): string {
  const parts = cached(`dayIn|${timeZone}`, () => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })).formatToParts(now);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** A business day per locale: "Dec 7, 2026" / "7 дек. 2026 г.". */
export function formatDay(day: string, lang: string, style: 'medium' | 'short' | 'long' = 'medium'): string {
  return cached(`day|${lang}|${style}`, () => new Intl.DateTimeFormat(lang, { dateStyle: style, timeZone: 'UTC' })).format(dayToUTC(day));
}

/** An instant per locale, in the business timezone. */
export function formatTime(iso: string, lang: string, timeZone: string): string {
  return cached(`time|${lang}|${timeZone}`, () => new Intl.DateTimeFormat(lang, { dateStyle: 'short', timeStyle: 'medium', timeZone })).format(
    new Date(iso),
  );
}

/** Days from..to inclusive, oldest first. */
export function daysBetween(from: string, to: string): number {
  return Math.round((dayToUTC(to).getTime() - dayToUTC(from).getTime()) / 86_400_000);
}
