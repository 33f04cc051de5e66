// One GraphQL request over HTTP, outside urql: the session's own calls (refresh, sign in) use it.
import { stringifyDocument } from '@urql/core';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { ApiError, type ApiErrorItem } from './errors';

export const GRAPHQL_PATH = '/graphql';

/** Sends one operation as a POST with same-origin credentials (the refresh cookie). */
export async function gqlFetch<R, V>(
  doc: TypedDocumentNode<R, V>,
  variables?: V,
  token?: string | null,
): Promise<R> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(GRAPHQL_PATH, {
      method: 'POST',
      credentials: 'same-origin',
      headers,
      body: JSON.stringify({ query: stringifyDocument(doc), variables: variables ?? {} }),
    });
  } catch {
    throw new ApiError([{ message: 'network', extensions: { code: 'NETWORK' } }]);
  }
  let body: { data?: R | null; errors?: ApiErrorItem[] };
  try {
    body = await res.json();
  } catch {
    throw new ApiError([{ message: `HTTP ${res.status}`, extensions: { code: res.status === 503 ? 'UNAVAILABLE' : 'INTERNAL' } }]);
  }
  if (body.errors?.length) throw new ApiError(body.errors);
  if (!body.data) throw new ApiError([{ message: 'empty response', extensions: { code: 'INTERNAL' } }]);
  return body.data;
}
