// The GraphQL clients: urql over HTTP for queries and mutations, graphql-ws (one socket per
// tab, graphql-transport-ws) for subscriptions (R-API-2, R-WEB-11).
import { Client, cacheExchange, fetchExchange } from 'urql';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';
import { session } from './session';
import { GRAPHQL_PATH } from './gqlFetch';

/**
 * fetch for urql: adds the session's token; when the gateway answers UNAUTHENTICATED to a
 * request that carried one, refreshes the session and sends the request once more.
 */
export async function authedFetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
  const send = (token: string | null) => {
    const headers = new Headers(init.headers);
    if (token) headers.set('Authorization', `Bearer ${token}`);
    else headers.delete('Authorization');
    return fetch(input, { ...init, headers, credentials: 'same-origin' });
  };
  const token = await session.accessToken();
  const res = await send(token);
  if (!token) return res;
  const text = await res.text();
  if (!text.includes('"UNAUTHENTICATED"')) return new Response(text, res);
  const fresh = await session.refresh();
  if (!fresh || fresh === token) return new Response(text, res);
  return send(fresh);
}

/** A client with an empty cache: one per signed-in account, so nothing of another shows. */
export function makeClient(): Client {
  return new Client({
    url: GRAPHQL_PATH,
    exchanges: [cacheExchange, fetchExchange],
    fetch: authedFetch,
    // Everything goes as POST: the gateway serves queries over POST (GET is optional there).
    preferGetMethod: false,
    requestPolicy: 'cache-and-network',
  });
}

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting';

type StateListener = (s: ConnectionState) => void;

/** The live connection's state and its "we are back, refetch" signal (R-WEB-11). */
class Live {
  state: ConnectionState = 'idle';
  private listeners = new Set<StateListener>();
  private resyncers = new Set<() => void>();
  private everConnected = false;
  private forceRefresh = false;
  readonly ws: WsClient;

  constructor() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let pingSent = 0;
    let pongTimer: ReturnType<typeof setTimeout> | undefined;
    let socket: WebSocket | null = null;
    this.ws = createWsClient({
      url: `${proto}//${location.host}${GRAPHQL_PATH}`,
      lazy: true,
      lazyCloseTimeout: 1000,
      retryAttempts: Infinity,
      shouldRetry: () => true,
      // Backoff with jitter: 0.5 s, 1 s, 2 s … capped at 10 s.
      retryWait: (retries) =>
        new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** retries) * (0.75 + Math.random() / 2))),
      keepAlive: 10_000,
      // The token is read at each connect, so a reconnect uses the refreshed one (R-SESS-4).
      connectionParams: async () => {
        const t = this.forceRefresh ? await session.refresh() : await session.accessToken();
        this.forceRefresh = false;
        return t ? { Authorization: `Bearer ${t}` } : {};
      },
      on: {
        connecting: () => this.set(this.everConnected ? 'reconnecting' : 'connecting'),
        opened: (s) => {
          socket = s as WebSocket;
        },
        connected: () => {
          const again = this.everConnected;
          this.everConnected = true;
          this.set('connected');
          if (again) for (const r of this.resyncers) r();
        },
        ping: (received) => {
          if (!received) {
            pingSent = Date.now();
            // No pong within 5 s: the connection is dead though the socket has not noticed.
            clearTimeout(pongTimer);
            pongTimer = setTimeout(() => {
              if (socket?.readyState === WebSocket.OPEN) this.ws.terminate();
            }, 5_000);
          }
        },
        pong: (received) => {
          if (received && pingSent) clearTimeout(pongTimer);
        },
        closed: (e) => {
          clearTimeout(pongTimer);
          socket = null;
          const code = (e as CloseEvent | undefined)?.code;
          // 4403: the token is no longer good; 4401: the socket was not authenticated.
          if (code === 4403 || code === 4401) this.forceRefresh = true;
          // 1000: closed on purpose (no subscription left); anything else is a drop.
          if (this.state !== 'idle') this.set(code === 1000 ? 'idle' : 'reconnecting');
        },
      },
    });
    window.addEventListener('offline', () => {
      if (this.state === 'connected') this.ws.terminate();
    });
  }

  private set(s: ConnectionState) {
    if (s === this.state) return;
    this.state = s;
    for (const l of this.listeners) l(s);
  }

  subscribe(l: StateListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Calls r after every reconnection: what the page shows may have missed pushes. */
  onResync(r: () => void): () => void {
    this.resyncers.add(r);
    return () => this.resyncers.delete(r);
  }

  /** Closes the socket (signing out) and forgets that it was ever connected. */
  reset() {
    this.ws.terminate();
    this.everConnected = false;
    this.set('idle');
  }
}

export const live = new Live();
