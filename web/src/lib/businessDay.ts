// The business day (R-ACC-7, R-WEB-9): the gateway's serverInfo { timezone today } when it offers
// it; otherwise UTC, the gateway's default. Every screen asks todayNow() and businessTimeZone().
import { useSyncExternalStore } from 'react';
import { dayIn } from './format';
import { GRAPHQL_PATH } from './gqlFetch';

let timeZone = 'UTC';
let offsetDays = 0; // the server's "today" against ours, should the clocks disagree
let version = 0;
const listeners = new Set<() => void>();

/** Asks the gateway once for its business timezone; keeps UTC when it does not say. */
export async function loadServerInfo(): Promise<void> {
  try {
    const res = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ query: '{ serverInfo { timezone today } }' }),
    });
    const body = (await res.json()) as { data?: { serverInfo?: { timezone: string; today: string } } };
    const info = body.data?.serverInfo;
    if (!info) return;
    new Intl.DateTimeFormat('en', { timeZone: info.timezone }); // throws on a zone this browser lacks
    timeZone = info.timezone;
    const mine = dayIn(timeZone);
    offsetDays = mine === info.today ? 0 : Math.round((Date.parse(info.today) - Date.parse(mine)) / 86_400_000);
    version++;
    for (const l of listeners) l();
  } catch {
    // The gateway has no serverInfo (or is away): UTC, its default.
  }
}

export function businessTimeZone(): string {
  return timeZone;
}

/** Today's business day. */
export function todayNow(): string {
  const d = dayIn(timeZone);
  if (!offsetDays) return d;
  const t = new Date(Date.parse(d) + offsetDays * 86_400_000);
  return t.toISOString().slice(0, 10);
}

/** Re-renders when the business timezone becomes known. */
export function useBusinessDay(): { today: string; timeZone: string } {
  useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => version,
  );
  return { today: todayNow(), timeZone };
}
