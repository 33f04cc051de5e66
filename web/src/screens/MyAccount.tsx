import { useSession } from '../lib/useSession';
import { Ledger } from './Ledger';

export function MyAccount() {
  const { account } = useSession();
  return <Ledger accountId={account!.id} own />;
}
