// Errors of the API (R-API-4) turned into what a person reads (R-WEB-11): a message per
// extensions.code in the user's language, and field errors placed next to their fields.
import type { CombinedError } from '@urql/core';

export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'RESYNC'
  | 'NETWORK';

export const ERROR_CODES: readonly ErrorCode[] = [
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'INTERNAL',
  'UNAVAILABLE',
  'RESYNC',
  'NETWORK',
];

export interface ApiErrorItem {
  message: string;
  extensions?: {
    code?: string;
    field?: string;
    fields?: { field: string; message: string }[];
    retryAfter?: number;
    [k: string]: unknown;
  };
}

/** An error answer of the gateway: its GraphQL errors as sent. */
export class ApiError extends Error {
  readonly errors: ApiErrorItem[];
  constructor(errors: ApiErrorItem[]) {
    super(errors.map((e) => e.message).join('; '));
    this.errors = errors;
  }
}

/** What the screens show of an error. */
export interface Described {
  /** The first error's code (NETWORK when the gateway could not be reached). */
  code: ErrorCode;
  /** The gateway's own message for the first error, a sentence in English. */
  detail: string;
  /** Field name → the gateway's message for that field. */
  fields: Record<string, string>;
  /** Seconds to wait before retrying (UNAVAILABLE, throttled logins). */
  retryAfter?: number;
}

function asCode(c: unknown): ErrorCode {
  return typeof c === 'string' && (ERROR_CODES as readonly string[]).includes(c) ? (c as ErrorCode) : 'INTERNAL';
}

/** Reads any error the app meets (urql's CombinedError, ApiError, a list of GraphQL errors, a close event). */
export function describe(err: unknown): Described {
  let items: ApiErrorItem[] = [];
  if (err instanceof ApiError) items = err.errors;
  else if (Array.isArray(err)) items = err as ApiErrorItem[];
  else if (err && typeof err === 'object' && 'graphQLErrors' in err) {
    const ce = err as CombinedError;
    if (ce.graphQLErrors.length) items = ce.graphQLErrors as unknown as ApiErrorItem[];
    else if (ce.networkError) items = [{ message: ce.networkError.message, extensions: { code: 'NETWORK' } }];
  }
  if (!items.length) return { code: 'NETWORK', detail: '', fields: {} };
  const fields: Record<string, string> = {};
  let retryAfter: number | undefined;
  for (const e of items) {
    const x = e.extensions ?? {};
    if (typeof x.field === 'string' && !(x.field in fields)) fields[x.field] = e.message;
    if (Array.isArray(x.fields)) for (const f of x.fields) if (f && typeof f.field === 'string') fields[f.field] ??= f.message;
    if (typeof x.retryAfter === 'number' && retryAfter === undefined) retryAfter = x.retryAfter;
  }
  return { code: asCode(items[0].extensions?.code), detail: items[0].message, fields, retryAfter };
}

/** The code of the first error, or undefined. */
export function codeOf(err: unknown): ErrorCode | undefined {
  return err ? describe(err).code : undefined;
}
