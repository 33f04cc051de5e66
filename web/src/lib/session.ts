// The browser's session (R-SESS-1, R-WEB-2): the access token lives in memory only; the
// refresh cookie (HttpOnly, set by login and signUp, path /graphql) is what survives a reload.
// refreshSession runs on load, shortly before the token expires, and when a request answers
// UNAUTHENTICATED; concurrent callers share one refresh.
import type { AccountFieldsFragment, AuthFieldsFragment } from '../gql/graphql';
import { LoginDocument, LogoutDocument, RefreshSessionDocument, SignUpDocument } from '../graphql/documents';
import { gqlFetch } from './gqlFetch';
import { ApiError, codeOf } from './errors';
import type { SignUpInput } from '../gql/graphql';

export type Account = AccountFieldsFragment;

export interface SessionState {
  /** loading: the first refresh has not answered yet. */
  status: 'loading' | 'signedIn' | 'signedOut';
  account: Account | null;
  /** Why the session ended, when it ended by itself (the refresh cookie was refused). */
  ended?: 'expired';
}

type Listener = (s: SessionState) => void;

/** Refresh this long before the access token's expiry (and at half its lifetime when it is short). */
const EARLY_MS = 60_000;

export class Session {
  private token: string | null = null;
  private expiresAt = 0;
  private state: SessionState = { status: 'loading', account: null };
  private listeners = new Set<Listener>();
  private refreshing: Promise<string | null> | null = null;
  /** Counts sign-ins and sign-outs: a refresh that outlived one answers for an older session. */
  private epoch = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly now: () => number;
  private readonly channel: BroadcastChannel | null;

  constructor(now: () => number = Date.now) {
    this.now = now;
    // Other tabs sign out with this one (their refresh cookie is gone too).
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('ates-session') : null;
    this.channel?.addEventListener('message', (e) => {
      if (e.data === 'signedOut') this.clear();
    });
  }

  get current(): SessionState {
    return this.state;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private set(s: SessionState) {
    this.state = s;
    for (const l of this.listeners) l(s);
  }

  private accept(p: AuthFieldsFragment) {
    this.token = p.token;
    this.expiresAt = Date.parse(p.expiresAt);
    const life = this.expiresAt - this.now();
    const early = Math.min(EARLY_MS, Math.max(life / 3, 1000));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), Math.max(life - early, 1000));
    const prev = this.state.account;
    if (this.state.status !== 'signedIn' || !prev || JSON.stringify(prev) !== JSON.stringify(p.account)) {
      this.set({ status: 'signedIn', account: p.account });
    }
  }

  private clear(ended?: 'expired') {
    this.epoch++;
    clearTimeout(this.timer);
    this.token = null;
    this.expiresAt = 0;
    if (this.state.status !== 'signedOut' || this.state.ended !== ended) this.set({ status: 'signedOut', account: null, ended });
  }

  /** Updates the signed-in account after the caller changed it (profile). */
  updateAccount(a: Account) {
    if (this.state.status === 'signedIn') this.set({ status: 'signedIn', account: a });
  }

  /** The access token, refreshed first when it is about to expire; null when signed out. */
  async accessToken(): Promise<string | null> {
    if (this.token && this.expiresAt - this.now() > 5_000) return this.token;
    if (this.state.status === 'signedOut') return null;
    return this.refresh();
  }

  /** The token as held now, without refreshing. */
  peekToken(): string | null {
    return this.token;
  }

  /** Calls refreshSession (once for all concurrent callers); the new token, or null when the session is over. */
  refresh(): Promise<string | null> {
    if (this.refreshing) return this.refreshing;
    const wasSignedIn = this.state.status === 'signedIn';
    const epoch = this.epoch;
    this.refreshing = (async () => {
      try {
        const d = await gqlFetch(RefreshSessionDocument);
        // Signed in or out while this was on its way (the load's refresh answering after the
        // sign-in form did): what was decided since stands.
        if (this.epoch !== epoch) return this.token;
        this.accept(d.refreshSession);
        return this.token;
      } catch (e) {
        if (this.epoch !== epoch) return this.token;
        const code = codeOf(e);
        if (code === 'NETWORK' || code === 'UNAVAILABLE' || code === 'INTERNAL') {
          // The gateway is away, not the session: keep what we have and try again soon.
          if (this.state.status === 'loading') this.clear();
          else {
            clearTimeout(this.timer);
            this.timer = setTimeout(() => void this.refresh(), 5_000);
          }
          return this.token;
        }
        this.clear(wasSignedIn ? 'expired' : undefined);
        return null;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  async login(username: string, password: string): Promise<void> {
    const d = await gqlFetch(LoginDocument, { username, password });
    this.epoch++;
    this.accept(d.login);
  }

  async signUp(input: SignUpInput): Promise<void> {
    const d = await gqlFetch(SignUpDocument, { input });
    this.epoch++;
    this.accept(d.signUp);
  }

  async logout(): Promise<void> {
    try {
      const t = await this.accessToken();
      if (t) {
        try {
          await gqlFetch(LogoutDocument, {}, t);
        } catch (e) {
          // The token was refused (a password or role change bumps the account's version): a
          // fresh one from the refresh cookie ends the session, so a reload does not bring it back.
          if (codeOf(e) !== 'UNAUTHENTICATED') throw e;
          this.token = null;
          const fresh = await this.refresh();
          if (fresh) await gqlFetch(LogoutDocument, {}, fresh);
        }
      }
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    } finally {
      this.clear();
      this.channel?.postMessage('signedOut');
    }
  }

  /** Forgets the session at once (another tab signed out, or the server refused it). */
  signedOutElsewhere() {
    this.clear('expired');
  }
}

export const session = new Session();
