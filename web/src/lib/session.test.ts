// R-SESS-1: the token is refreshed once for concurrent callers, and a request answered
// UNAUTHENTICATED is retried once with a fresh token.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const account = { id: 'a1', username: 'popug', fullName: 'Popug', email: 'p@x.io', role: 'WORKER', active: true, createdAt: '2026-12-07T00:00:00Z' };

function auth(token: string, inMs = 3_600_000) {
  return { token, expiresAt: new Date(Date.now() + inMs).toISOString(), account };
}

function json(body: unknown) {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
}

class FakeWebSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
}

beforeEach(() => {
  vi.resetModules();
  vi.stubGlobal('location', { protocol: 'http:', host: 'localhost:8080' });
  vi.stubGlobal('window', { addEventListener() {} });
  vi.stubGlobal('WebSocket', FakeWebSocket);
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe('session', () => {
  it('refreshes once for concurrent callers, with the cookie (same-origin POST)', async () => {
    let calls = 0;
    const fetch = vi.fn(async (_url: string, init: RequestInit) => {
      calls++;
      expect(init.method).toBe('POST');
      expect(init.credentials).toBe('same-origin');
      expect(new Headers(init.headers).get('Content-Type')).toBe('application/json');
      expect(String(init.body)).toContain('refreshSession');
      return json({ data: { refreshSession: auth(`t${calls}`) } });
    });
    vi.stubGlobal('fetch', fetch);
    const { Session } = await import('./session');
    const s = new Session();
    const [a, b, c] = await Promise.all([s.refresh(), s.refresh(), s.accessToken()]);
    expect([a, b, c]).toEqual(['t1', 't1', 't1']);
    expect(calls).toBe(1);
    expect(s.current.status).toBe('signedIn');
    expect(await s.accessToken()).toBe('t1');
    expect(calls).toBe(1);
  });

  it('is signed out when the refresh cookie is refused', async () => {
    vi.stubGlobal('fetch', async () => json({ errors: [{ message: 'no session', extensions: { code: 'UNAUTHENTICATED' } }] }));
    const { Session } = await import('./session');
    const s = new Session();
    expect(await s.refresh()).toBeNull();
    expect(s.current.status).toBe('signedOut');
  });

  it('a sign-in stands when the load\'s refresh answers after it (refused or not)', async () => {
    for (const late of [
      { errors: [{ message: 'no session', extensions: { code: 'UNAUTHENTICATED' } }] },
      { data: { refreshSession: { ...auth('old'), account: { ...account, id: 'a0', username: 'other' } } } },
    ]) {
      let answerRefresh: (r: Response) => void = () => {};
      vi.stubGlobal('fetch', (_url: string, init: RequestInit) =>
        String(init.body).includes('refreshSession')
          ? new Promise<Response>((r) => (answerRefresh = r))
          : Promise.resolve(json({ data: { login: auth('fresh') } })),
      );
      const { Session } = await import('./session');
      const s = new Session();
      const onLoad = s.refresh();
      await s.login('popug', 'beak-print-123');
      expect(s.current.status).toBe('signedIn');
      answerRefresh(json(late));
      expect(await onLoad).toBe('fresh');
      expect(s.current).toEqual({ status: 'signedIn', account });
      expect(await s.accessToken()).toBe('fresh');
    }
  });

  it('a refresh that answers after a sign-out does not sign the tab back in', async () => {
    let answerRefresh: (r: Response) => void = () => {};
    vi.stubGlobal('fetch', (_url: string, init: RequestInit) =>
      String(init.body).includes('refreshSession')
        ? new Promise<Response>((r) => (answerRefresh = r))
        : Promise.resolve(json({ data: { login: auth('t1'), logout: true } })),
    );
    const { Session } = await import('./session');
    const s = new Session();
    await s.login('popug', 'beak-print-123');
    const pending = s.refresh();
    s.signedOutElsewhere();
    answerRefresh(json({ data: { refreshSession: auth('t2') } }));
    expect(await pending).toBeNull();
    expect(s.current.status).toBe('signedOut');
    expect(await s.accessToken()).toBeNull();
  });

  it('refreshes before a token about to expire is used', async () => {
    let n = 0;
    vi.stubGlobal('fetch', async () => json({ data: { refreshSession: auth(`t${++n}`, n === 1 ? 3_000 : 600_000) } }));
    const { Session } = await import('./session');
    const s = new Session();
    await s.refresh();
    // 3 s left is under the 5 s margin: the next use refreshes first.
    expect(await s.accessToken()).toBe('t2');
  });
});

describe('authedFetch', () => {
  it('retries once with a refreshed token after UNAUTHENTICATED', async () => {
    const seen: (string | null)[] = [];
    let refreshes = 0;
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      const body = String(init.body);
      if (body.includes('refreshSession')) return json({ data: { refreshSession: auth(`fresh${++refreshes}`) } });
      const authz = new Headers(init.headers).get('Authorization');
      seen.push(authz);
      if (authz === 'Bearer fresh1') return json({ errors: [{ message: 'token expired', extensions: { code: 'UNAUTHENTICATED' } }] });
      return json({ data: { me: account } });
    });
    const { session } = await import('./session');
    const { authedFetch } = await import('./client');
    await session.refresh();
    const res = await authedFetch('/graphql', { method: 'POST', body: '{"query":"{ me { id } }"}' });
    expect(await res.json()).toEqual({ data: { me: account } });
    expect(seen).toEqual(['Bearer fresh1', 'Bearer fresh2']);
    expect(refreshes).toBe(2);
  });

  it('gives the error back when the session cannot be refreshed', async () => {
    let refreshes = 0;
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
      if (String(init.body).includes('refreshSession')) {
        return ++refreshes === 1
          ? json({ data: { refreshSession: auth('t1') } })
          : json({ errors: [{ message: 'session ended', extensions: { code: 'UNAUTHENTICATED' } }] });
      }
      return json({ errors: [{ message: 'deactivated', extensions: { code: 'UNAUTHENTICATED' } }] });
    });
    const { session } = await import('./session');
    const { authedFetch } = await import('./client');
    await session.refresh();
    const res = await authedFetch('/graphql', { method: 'POST', body: '{}' });
    expect((await res.json()).errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(session.current.status).toBe('signedOut');
  });
});
