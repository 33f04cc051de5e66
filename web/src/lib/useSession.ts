import { useSyncExternalStore } from 'react';
import { session, type SessionState } from './session';
import { live, type ConnectionState } from './client';
import type { Role } from '../gql/graphql';

export function useSession(): SessionState {
  return useSyncExternalStore(
    (l) => session.subscribe(l),
    () => session.current,
  );
}

export function useConnection(): ConnectionState {
  return useSyncExternalStore(
    (l) => live.subscribe(l),
    () => live.state,
  );
}

/** The screens each role may open (api/schema.graphql's access notes). */
export const can = {
  shuffle: (r?: Role) => r === 'ADMIN' || r === 'MANAGER',
  accounting: (r?: Role) => r === 'ADMIN' || r === 'ACCOUNTANT',
  analytics: (r?: Role) => r === 'ADMIN',
  accounts: (r?: Role) => r === 'ADMIN',
  graphiql: (r?: Role) => r === 'ADMIN',
};
