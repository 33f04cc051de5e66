// An account's balance, today's earnings, its audit log by day, payments and the last 30 days
// (R-WEB-4, R-ACC-5, R-ACC-10): the popug's own, or any popug's for ADMIN and ACCOUNTANT.
import { useEffect, useMemo, useRef, useState } from 'react';
import { useQuery } from 'urql';
import { Badge, Group, Paper, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import { BalanceChangedDocument, BillingAccountDocument } from '../graphql/documents';
import type { EntryFieldsFragment } from '../gql/graphql';
import { useLive } from '../lib/useLive';
import { addDays, formatDay, formatMoney, formatTime, chartValue } from '../lib/format';
import { useBusinessDay } from '../lib/businessDay';
import { Chart, Day, ErrorAlert, Money, Pager, usePaging } from '../components/common';

export function Ledger({ accountId, own }: { accountId: string; own: boolean }) {
  const { t, i18n } = useTranslation();
  const { today, timeZone } = useBusinessDay();
  const [day, setDay] = useState(today);
  const paging = usePaging();
  const from = addDays(today, -29);
  const [res, refetch] = useQuery({
    query: BillingAccountDocument,
    variables: { accountId, first: 50, after: paging.after, day, from, to: today },
  });
  const ba = res.data?.billingAccount;
  const again = () => refetch({ requestPolicy: 'network-only' });

  // Live (R-ACC-10): the balance and the day's log change at once; totals settle by a refetch.
  const [liveBalance, setLiveBalance] = useState<string | null>(null);
  const [pushed, setPushed] = useState<EntryFieldsFragment[]>([]);
  useEffect(() => {
    setLiveBalance(null);
    setPushed([]);
  }, [res.data]);
  const settle = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(settle.current), []);
  useLive(
    BalanceChangedDocument,
    (d) => {
      const c = d.balanceChanged;
      if (c.accountId !== accountId) return;
      setLiveBalance(c.balance);
      if (c.entry.day === day && paging.page === 0) setPushed((p) => (p.some((e) => e.id === c.entry.id) ? p : [c.entry, ...p]));
      clearTimeout(settle.current);
      settle.current = setTimeout(again, 1500);
    },
    { variables: { accountId }, onResync: again },
  );

  // The chart is drawn again only when its days change, not at every live push.
  const days = ba?.days;
  const chart = useMemo(
    () =>
      days && (
        <Chart
          title={t('account.earned')}
          points={days.map((d) => ({ label: formatDay(d.date, i18n.language, 'short'), value: chartValue(d.earned), display: formatMoney(d.earned, i18n.language) }))}
        />
      ),
    [days, t, i18n.language],
  );
  const entries = [...pushed.filter((p) => !ba?.entries.edges.some((e) => e.node.id === p.id)), ...(ba?.entries.edges.map((e) => e.node) ?? [])];
  const balance = liveBalance ?? ba?.balance;
  const name = ba ? ba.account.fullName || ba.account.username : '';

  return (
    <Stack>
      <Title order={2}>{own ? t('account.title') : t('account.titleOf', { name })}</Title>
      <ErrorAlert error={res.error} onRetry={again} />
      <SimpleGrid cols={{ base: 1, sm: 2 }}>
        <Paper withBorder p="md">
          <Text size="sm" c="dimmed" id="balance-label">
            {t('account.balance')}
          </Text>
          <Text size="xl" fw={700} data-testid="balance" aria-live="polite">
            {balance !== undefined ? <Money value={balance} colored /> : '…'}
          </Text>
        </Paper>
        <Paper withBorder p="md">
          <Text size="sm" c="dimmed" id="today-label">
            {t('account.earnedToday')}
          </Text>
          <Text size="xl" fw={700} data-testid="earned-today">
            {ba ? <Money value={ba.earnedToday} colored /> : '…'}
          </Text>
        </Paper>
      </SimpleGrid>
      <Paper withBorder p="md">
        <Title order={3} size="h4" mb="xs">
          {t('account.last30')}
        </Title>
        {chart}
      </Paper>
      <Paper withBorder p="md">
        <Group justify="space-between" align="flex-end" mb="xs">
          <Title order={3} size="h4">
            {t('account.auditLog')}
          </Title>
          <TextInput
            type="date"
            label={t('account.day')}
            value={day}
            max={today}
            onChange={(e) => {
              if (e.currentTarget.value) {
                setDay(e.currentTarget.value);
                paging.reset();
              }
            }}
          />
        </Group>
        <Table striped data-testid="ledger">
          <Table.Caption>{t('account.entriesOf', { day: formatDay(day, i18n.language), count: ba?.entries.totalCount ?? 0 })}</Table.Caption>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t('account.when')}</Table.Th>
              <Table.Th>{t('account.type')}</Table.Th>
              <Table.Th>{t('account.what')}</Table.Th>
              <Table.Th className="ates-num">{t('account.amount')}</Table.Th>
              <Table.Th className="ates-num">{t('account.balanceAfter')}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {entries.map((e) => (
              <Table.Tr key={e.id}>
                <Table.Td>
                  <Text size="xs">{formatTime(e.occurredAt, i18n.language, timeZone)}</Text>
                </Table.Td>
                <Table.Td>
                  <Badge variant="outline" color={e.type === 'REWARD' ? '#1e6b2f' : e.type === 'FEE' ? '#a61e1e' : 'dark'}>
                    {t(`entry.${e.type}`)}
                  </Badge>
                </Table.Td>
                <Table.Td>
                  <Text size="sm">{e.description}</Text>
                  {e.task && (
                    <Text size="xs" c="dimmed" lineClamp={2}>
                      {e.task.description}
                    </Text>
                  )}
                </Table.Td>
                <Table.Td className="ates-num">
                  <Money value={e.amount} colored />
                </Table.Td>
                <Table.Td className="ates-num">
                  <Money value={e.balanceAfter} />
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        {ba && entries.length === 0 && <Text c="dimmed">{t('account.noEntries')}</Text>}
        <Pager page={paging.page} hasNext={!!ba?.entries.pageInfo.hasNextPage} onPrev={paging.prev} onNext={() => paging.next(ba?.entries.pageInfo.endCursor)} />
      </Paper>
      <Paper withBorder p="md">
        <Title order={3} size="h4" mb="xs">
          {t('account.payments')}
        </Title>
        {ba && ba.payments.length === 0 ? (
          <Text c="dimmed">{t('account.noPayments')}</Text>
        ) : (
          <Table data-testid="payments">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>{t('account.day')}</Table.Th>
                <Table.Th className="ates-num">{t('account.amount')}</Table.Th>
                <Table.Th>{t('account.email')}</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {ba?.payments.map((p) => (
                <Table.Tr key={p.id}>
                  <Table.Td>
                    <Day value={p.day} />
                  </Table.Td>
                  <Table.Td className="ates-num">
                    <Money value={p.amount} />
                  </Table.Td>
                  <Table.Td>{p.emailSent ? t('account.emailSent') : t('account.emailPending')}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        )}
      </Paper>
    </Stack>
  );
}
