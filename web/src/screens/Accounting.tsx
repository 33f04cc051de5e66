// Accounting for ACCOUNTANT and ADMIN (R-WEB-5, R-ACC-5, R-ACC-6, R-ACC-8, R-ACC-9).
import { useRef, useState, useEffect } from 'react';
import { Link, useParams } from 'react-router';
import { useMutation, useQuery } from 'urql';
import { Anchor, Group, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { notify } from '../lib/notify';
import { useTranslation } from 'react-i18next';
import { BalanceChangedDocument, BillingAccountsDocument, CloseBillingDayDocument, ManagementEarningsDocument } from '../graphql/documents';
import { can, useSession } from '../lib/useSession';
import { useLive } from '../lib/useLive';
import { useBusinessDay } from '../lib/businessDay';
import { addDays, chartValue, formatDay, formatMoney } from '../lib/format';
import { Chart, ConfirmButton, ErrorAlert, Money, Pager, errorText, usePaging } from '../components/common';
import { DateRange } from '../components/DateRange';
import { Forbidden } from '../components/Layout';
import { Ledger } from './Ledger';

export function Accounting() {
  const { account } = useSession();
  if (!can.accounting(account?.role)) return <Forbidden />;
  return <AccountingScreen />;
}

function AccountingScreen() {
  const { t, i18n } = useTranslation();
  const { today } = useBusinessDay();
  const [range, setRange] = useState({ from: addDays(today, -29), to: today });
  const [earn, refetchEarn] = useQuery({ query: ManagementEarningsDocument, variables: range });
  const [todayRes, refetchToday] = useQuery({ query: ManagementEarningsDocument, variables: { from: today, to: today } });
  const paging = usePaging();
  const [accs, refetchAccs] = useQuery({ query: BillingAccountsDocument, variables: { first: 50, after: paging.after } });
  const [closeState, close] = useMutation(CloseBillingDayDocument);
  const [balances, setBalances] = useState<Map<string, string>>(new Map());
  useEffect(() => setBalances(new Map()), [accs.data]);
  const settle = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(settle.current), []);
  const refetchAll = () => {
    const o = { requestPolicy: 'network-only' as const };
    refetchAccs(o);
    refetchToday(o);
    refetchEarn(o);
  };
  // Every account's balance, live (R-ACC-10: ADMIN and ACCOUNTANT follow all accounts).
  useLive(
    BalanceChangedDocument,
    (d) => {
      const c = d.balanceChanged;
      setBalances((m) => new Map(m).set(c.accountId, c.balance));
      clearTimeout(settle.current);
      settle.current = setTimeout(refetchAll, 2000);
    },
    { variables: {}, onResync: refetchAll },
  );
  const todayEarnings = todayRes.data?.managementEarnings[0]?.managementEarnings;
  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>{t('accounting.title')}</Title>
        <ConfirmButton
          label={t('accounting.close')}
          title={t('accounting.closeTitle')}
          message={t('accounting.closeConfirm')}
          confirmLabel={t('accounting.closeYes')}
          color="#a61e1e"
          loading={closeState.fetching}
          onConfirm={async () => {
            const r = await close({});
            if (r.error) return void notify({ color: 'red', title: t('errors.title'), message: errorText(t, r.error) });
            const c = r.data!.closeBillingDay;
            notify({
              color: 'green',
              title: t('accounting.closed', { day: formatDay(c.day, i18n.language) }),
              message: t('accounting.paid', { count: c.paidAccounts, total: formatMoney(c.totalPaid, i18n.language) }),
            });
            refetchAll();
          }}
        />
      </Group>
      <Paper withBorder p="md">
        <Text size="sm" c="dimmed" id="company-today">
          {t('accounting.today')}
        </Text>
        <Text size="xl" fw={700} data-testid="company-today">
          {todayEarnings !== undefined ? <Money value={todayEarnings} colored /> : '…'}
        </Text>
      </Paper>
      <Paper withBorder p="md">
        <Group justify="space-between" align="flex-end" mb="sm">
          <Title order={3} size="h4">
            {t('accounting.range')}
          </Title>
          <DateRange from={range.from} to={range.to} max={today} onChange={(from, to) => setRange({ from, to })} />
        </Group>
        <ErrorAlert error={earn.error} />
        {earn.data && (
          <Chart
            title={t('accounting.earnings')}
            points={earn.data.managementEarnings.map((d) => ({
              label: formatDay(d.date, i18n.language, 'short'),
              value: chartValue(d.managementEarnings),
              display: formatMoney(d.managementEarnings, i18n.language),
            }))}
          />
        )}
      </Paper>
      <Paper withBorder p="md">
        <Title order={3} size="h4" mb="xs">
          {t('accounting.accounts')}
        </Title>
        <ErrorAlert error={accs.error} onRetry={refetchAll} />
        <Table striped data-testid="billing-accounts">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t('accounting.popug')}</Table.Th>
              <Table.Th>{t('accounting.role')}</Table.Th>
              <Table.Th className="ates-num">{t('account.balance')}</Table.Th>
              <Table.Th className="ates-num">{t('account.earnedToday')}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {accs.data?.billingAccounts.edges.map(({ node: b }) => (
              <Table.Tr key={b.account.id} data-account={b.account.username}>
                <Table.Td>
                  <Anchor component={Link} to={`/accounting/${b.account.id}`}>
                    {b.account.fullName || b.account.username}
                  </Anchor>{' '}
                  <Text span size="xs" c="dimmed">
                    @{b.account.username}
                    {!b.account.active && ` · ${t('accounts.inactive')}`}
                  </Text>
                </Table.Td>
                <Table.Td>{t(`roles.${b.account.role}`)}</Table.Td>
                <Table.Td className="ates-num" data-testid="balance">
                  <Money value={balances.get(b.account.id) ?? b.balance} colored />
                </Table.Td>
                <Table.Td className="ates-num">
                  <Money value={b.earnedToday} colored />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        <Pager
          page={paging.page}
          hasNext={!!accs.data?.billingAccounts.pageInfo.hasNextPage}
          onPrev={paging.prev}
          onNext={() => paging.next(accs.data?.billingAccounts.pageInfo.endCursor)}
          total={accs.data?.billingAccounts.totalCount}
        />
      </Paper>
    </Stack>
  );
}

/** Any popug's audit log (R-WEB-5). */
export function PopugLedger() {
  const { account } = useSession();
  const { accountId } = useParams();
  const { t } = useTranslation();
  if (!can.accounting(account?.role)) return <Forbidden />;
  return (
    <Stack gap={0}>
      <Anchor component={Link} to="/accounting" size="sm" mb="xs">
        ← {t('accounting.back')}
      </Anchor>
      <Ledger accountId={accountId!} own={accountId === account?.id} />
    </Stack>
  );
}
