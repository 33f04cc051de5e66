// Accounts for ADMIN (R-WEB-7, R-AUTH-2): list, search, create with a role, change role,
// deactivate, reactivate.
import { useEffect, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { Badge, Button, Group, Modal, NativeSelect, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { notify } from '../lib/notify';
import { useTranslation } from 'react-i18next';
import {
  AccountsDocument,
  ChangeRoleDocument,
  CreateAccountDocument,
  DeactivateAccountDocument,
  ReactivateAccountDocument,
  SearchAccountsDocument,
} from '../graphql/documents';
import type { Role } from '../gql/graphql';
import { can, useSession } from '../lib/useSession';
import { describe } from '../lib/errors';
import { validateAccount, type FieldErrors } from '../lib/validate';
import { ErrorAlert, Pager, PasswordField, errorText, usePaging } from '../components/common';
import { Forbidden } from '../components/Layout';

const ROLES: Role[] = ['WORKER', 'MANAGER', 'ACCOUNTANT', 'ADMIN'];

export function AccountsAdmin() {
  const { account } = useSession();
  if (!can.accounts(account?.role)) return <Forbidden />;
  return <AccountsScreen />;
}

function AccountsScreen() {
  const { t } = useTranslation();
  const { account: me } = useSession();
  const [text, setText] = useState('');
  const [search, setSearch] = useState('');
  useEffect(() => {
    const id = setTimeout(() => setSearch(text.trim()), 300);
    return () => clearTimeout(id);
  }, [text]);
  const [role, setRole] = useState<Role | ''>('');
  const paging = usePaging();
  useEffect(() => paging.reset(), [search, role]); // eslint-disable-line react-hooks/exhaustive-deps
  const [list, refetchList] = useQuery({ query: AccountsDocument, variables: { first: 50, after: paging.after, role: role || null }, pause: !!search });
  const [found, refetchFound] = useQuery({ query: SearchAccountsDocument, variables: { search, first: 50, after: paging.after }, pause: !search });
  const conn = search ? found.data?.searchAccounts : list.data?.accounts;
  const error = search ? found.error : list.error;
  const refetch = () => (search ? refetchFound : refetchList)({ requestPolicy: 'network-only' });
  const [, changeRole] = useMutation(ChangeRoleDocument);
  const [, deactivate] = useMutation(DeactivateAccountDocument);
  const [, reactivate] = useMutation(ReactivateAccountDocument);
  const [creating, setCreating] = useState(false);
  const report = (r: { error?: unknown }, ok: string) => {
    if (r.error) notify({ color: 'red', title: t('errors.title'), message: errorText(t, r.error) });
    else notify({ color: 'green', message: ok });
  };
  const rows = (conn?.edges ?? []).map((e) => e.node).filter((a) => !role || !search || a.role === role);
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>{t('accounts.title')}</Title>
        <Button onClick={() => setCreating(true)}>{t('accounts.create')}</Button>
      </Group>
      <Group align="flex-end">
        <TextInput type="search" label={t('accounts.search')} value={text} onChange={(e) => setText(e.currentTarget.value)} placeholder={t('accounts.searchHint')} />
        <NativeSelect
          label={t('accounts.role')}
          value={role}
          onChange={(e) => setRole(e.currentTarget.value as Role | '')}
          data={[{ value: '', label: t('accounts.anyRole') }, ...ROLES.map((r) => ({ value: r, label: t(`roles.${r}`) }))]}
        />
      </Group>
      <ErrorAlert error={error} onRetry={refetch} />
      <Table striped data-testid="accounts">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>{t('auth.username')}</Table.Th>
            <Table.Th>{t('auth.fullName')}</Table.Th>
            <Table.Th>{t('auth.email')}</Table.Th>
            <Table.Th>{t('accounts.role')}</Table.Th>
            <Table.Th>{t('accounts.state')}</Table.Th>
            <Table.Th>
              <span className="ates-skip">{t('tasks.actions')}</span>
            </Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((a) => (
            <Table.Tr key={a.id} data-account={a.username}>
              <Table.Td>{a.username}</Table.Td>
              <Table.Td>{a.fullName}</Table.Td>
              <Table.Td>{a.email}</Table.Td>
              <Table.Td>
                <NativeSelect
                  aria-label={t('accounts.roleOf', { name: a.username })}
                  size="xs"
                  value={a.role}
                  disabled={a.id === me?.id}
                  onChange={async (e) => {
                    const r = await changeRole({ accountId: a.id, role: e.currentTarget.value as Role });
                    report(r, t('accounts.roleChanged', { name: a.username }));
                  }}
                  data={ROLES.map((r) => ({ value: r, label: t(`roles.${r}`) }))}
                />
              </Table.Td>
              <Table.Td>
                <Badge variant="filled" color={a.active ? '#1e6b2f' : '#495057'}>
                  {a.active ? t('accounts.active') : t('accounts.inactive')}
                </Badge>
              </Table.Td>
              <Table.Td>
                {a.id !== me?.id &&
                  (a.active ? (
                    <Button
                      size="compact-sm"
                      variant="outline"
                      color="#a61e1e"
                      aria-label={t('accounts.deactivateOf', { name: a.username })}
                      onClick={async () => report(await deactivate({ accountId: a.id }), t('accounts.deactivated', { name: a.username }))}
                    >
                      {t('accounts.deactivate')}
                    </Button>
                  ) : (
                    <Button
                      size="compact-sm"
                      variant="outline"
                      aria-label={t('accounts.reactivateOf', { name: a.username })}
                      onClick={async () => report(await reactivate({ accountId: a.id }), t('accounts.reactivated', { name: a.username }))}
                    >
                      {t('accounts.reactivate')}
                    </Button>
                  ))}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {conn && rows.length === 0 && <Text c="dimmed">{t('accounts.empty')}</Text>}
      <Pager page={paging.page} hasNext={!!conn?.pageInfo.hasNextPage} onPrev={paging.prev} onNext={() => paging.next(conn?.pageInfo.endCursor)} total={conn?.totalCount} />
      <CreateAccount opened={creating} onClose={() => setCreating(false)} onCreated={refetch} />
    </Stack>
  );
}

function CreateAccount({ opened, onClose, onCreated }: { opened: boolean; onClose: () => void; onCreated: () => void }) {
  const { t } = useTranslation();
  const empty = { username: '', password: '', fullName: '', email: '', role: 'WORKER' as Role };
  const [v, setV] = useState(empty);
  const [local, setLocal] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>(null);
  const [state, create] = useMutation(CreateAccountDocument);
  const server = error ? describe(error).fields : {};
  const field = (k: 'username' | 'password' | 'fullName' | 'email') => ({
    value: v[k],
    onChange: (e: React.ChangeEvent<HTMLInputElement>) => setV({ ...v, [k]: e.currentTarget.value }),
    error: local[k] ? t(local[k]) : server[k] ?? server[`input.${k}`],
  });
  return (
    <Modal opened={opened} onClose={onClose} closeButtonProps={{ 'aria-label': t('common.close') }} title={t('accounts.createTitle')} centered>
      <form
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          const errs = validateAccount(v);
          setLocal(errs);
          setError(null);
          if (Object.keys(errs).length) return;
          const r = await create({ input: { ...v, username: v.username.trim() } });
          if (r.error) return setError(r.error);
          notify({ color: 'green', message: t('accounts.created', { name: r.data!.createAccount.username }) });
          setV(empty);
          onCreated();
          onClose();
        }}
      >
        <Stack>
          <TextInput label={t('auth.username')} description={t('auth.usernameHint')} required data-autofocus {...field('username')} />
          <TextInput label={t('auth.fullName')} required {...field('fullName')} />
          <TextInput label={t('auth.email')} type="email" required {...field('email')} />
          <PasswordField label={t('auth.password')} description={t('auth.passwordHint')} required autoComplete="new-password" {...field('password')} />
          <NativeSelect
            label={t('accounts.role')}
            value={v.role}
            onChange={(e) => setV({ ...v, role: e.currentTarget.value as Role })}
            data={ROLES.map((r) => ({ value: r, label: t(`roles.${r}`) }))}
          />
          {error && !Object.keys(server).length ? <ErrorAlert error={error} /> : null}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {t('common.cancel')}
            </Button>
            <Button type="submit" loading={state.fetching}>
              {t('accounts.createSubmit')}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
