// A live subscription over the tab's one socket (R-ACC-10, R-LIVE-1, R-SESS-4, R-WEB-11).
// An error UNAUTHENTICATED or FORBIDDEN refreshes the session and subscribes again; RESYNC (or a
// completed subscription) refetches and subscribes again; a dropped socket reconnects with
// backoff and the page refetches what it may have missed.
import { useEffect, useRef } from 'react';
import { stringifyDocument } from '@urql/core';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { live } from './client';
import { session } from './session';
import { describe } from './errors';

export interface LiveOptions<V> {
  variables?: V;
  /** Subscribe only when true (e.g. once the role is known). */
  enabled?: boolean;
  /** Called when pushes may have been missed: refetch what the page shows. */
  onResync?: () => void;
}

export function useLive<R, V extends Record<string, unknown>>(
  doc: TypedDocumentNode<R, V>,
  onData: (data: R) => void,
  { variables, enabled = true, onResync }: LiveOptions<V> = {},
) {
  const onDataRef = useRef(onData);
  const onResyncRef = useRef(onResync);
  onDataRef.current = onData;
  onResyncRef.current = onResync;
  const key = JSON.stringify(variables ?? {});

  useEffect(() => {
    if (!enabled) return;
    let stopped = false;
    let dispose: (() => void) | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    const query = stringifyDocument(doc);
    const vars = JSON.parse(key) as V;

    const start = () => {
      if (stopped) return;
      dispose = live.ws.subscribe<R>(
        { query, variables: vars },
        {
          next: (r) => {
            failures = 0;
            if (r.errors?.length) return void handleError(r.errors);
            if (r.data) onDataRef.current(r.data as R);
          },
          error: (e) => handleError(e),
          // The server ended the subscription without an error (a follower it dropped).
          complete: () => {
            if (stopped) return;
            onResyncRef.current?.();
            again(500);
          },
        },
      );
    };
    const again = (ms: number) => {
      clearTimeout(retry);
      retry = setTimeout(start, ms);
    };
    const handleError = (e: unknown) => {
      if (stopped) return;
      failures++;
      const backoff = Math.min(10_000, 500 * 2 ** failures);
      // A close event: the socket is reconnecting by itself; subscribe again after it.
      if (!Array.isArray(e)) return again(backoff);
      const { code } = describe(e);
      if (code === 'RESYNC') {
        onResyncRef.current?.();
        return again(0);
      }
      if (code === 'UNAUTHENTICATED' || code === 'FORBIDDEN') {
        void session.refresh().then((t) => {
          if (t) again(failures > 3 ? backoff : 0);
        });
        return;
      }
      again(backoff);
    };
    start();
    const offResync = live.onResync(() => onResyncRef.current?.());
    return () => {
      stopped = true;
      clearTimeout(retry);
      offResync();
      dispose?.();
    };
  }, [doc, key, enabled]);
}
