// Analytics for ADMIN (R-WEB-6, R-AN-1…3).
import { useState } from 'react';
import { useQuery } from 'urql';
import { Group, NativeSelect, Paper, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import { AnalyticsSummaryDocument, MostExpensiveDocument } from '../graphql/documents';
import type { Period } from '../gql/graphql';
import { can, useSession } from '../lib/useSession';
import { useBusinessDay } from '../lib/businessDay';
import { addDays, chartValue, formatDay, formatMoney } from '../lib/format';
import { Chart, Day, ErrorAlert, Money } from '../components/common';
import { DateRange } from '../components/DateRange';
import { Forbidden } from '../components/Layout';

export function Analytics() {
  const { account } = useSession();
  if (!can.analytics(account?.role)) return <Forbidden />;
  return <AnalyticsScreen />;
}

function AnalyticsScreen() {
  const { t, i18n } = useTranslation();
  const { today } = useBusinessDay();
  const [date, setDate] = useState(today);
  const [summary] = useQuery({ query: AnalyticsSummaryDocument, variables: { date }, requestPolicy: 'network-only' });
  const [range, setRange] = useState({ from: addDays(today, -29), to: today });
  const [period, setPeriod] = useState<Period>('DAY');
  const [top] = useQuery({ query: MostExpensiveDocument, variables: { ...range, period }, requestPolicy: 'network-only' });
  const s = summary.data?.analyticsSummary;
  const best = top.data?.mostExpensiveTask.top;
  const series = top.data?.mostExpensiveTasks ?? [];
  const label = (from: string, to: string) =>
    from === to ? formatDay(from, i18n.language, 'short') : `${formatDay(from, i18n.language, 'short')} – ${formatDay(to, i18n.language, 'short')}`;
  return (
    <Stack>
      <Title order={2}>{t('analytics.title')}</Title>
      <Paper withBorder p="md">
        <Group justify="space-between" align="flex-end" mb="sm">
          <Title order={3} size="h4">
            {t('analytics.summary')}
          </Title>
          <TextInput type="date" label={t('account.day')} value={date} max={today} onChange={(e) => e.currentTarget.value && setDate(e.currentTarget.value)} />
        </Group>
        <ErrorAlert error={summary.error} />
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <div>
            <Text size="sm" c="dimmed" id="an-earn">
              {t('analytics.earnings')}
            </Text>
            <Text size="xl" fw={700} data-testid="an-earnings">
              {s ? <Money value={s.managementEarnings} colored /> : '…'}
            </Text>
          </div>
          <div>
            <Text size="sm" c="dimmed" id="an-neg">
              {t('analytics.negative')}
            </Text>
            <Text size="xl" fw={700} data-testid="an-negative">
              {s ? t('analytics.popugs', { count: s.negativeBalanceCount }) : '…'}
            </Text>
          </div>
        </SimpleGrid>
      </Paper>
      <Paper withBorder p="md">
        <Group justify="space-between" align="flex-end" mb="sm">
          <Title order={3} size="h4">
            {t('analytics.expensive')}
          </Title>
          <Group align="flex-end">
            <DateRange from={range.from} to={range.to} max={today} onChange={(from, to) => setRange({ from, to })} />
            <NativeSelect
              label={t('analytics.period')}
              value={period}
              onChange={(e) => setPeriod(e.currentTarget.value as Period)}
              data={(['DAY', 'WEEK', 'MONTH'] as const).map((p) => ({ value: p, label: t(`period.${p}`) }))}
            />
          </Group>
        </Group>
        <ErrorAlert error={top.error} />
        <Text data-testid="an-top">
          {top.data && (best ? t('analytics.top', { title: best.task.jiraId ? `${best.task.jiraId} ${best.task.title}` : best.task.title }) : t('analytics.none'))}{' '}
          {best && <Money value={best.reward} />}
        </Text>
        {series.length > 0 && (
          <Chart
            kind="line"
            title={t('analytics.reward')}
            points={series.map((p) => ({ label: label(p.from, p.to), value: p.top ? chartValue(p.top.reward) : 0, display: formatMoney(p.top?.reward ?? '0.00', i18n.language) }))}
          />
        )}
        <Table striped mt="sm" data-testid="an-series">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{t(`period.${period}`)}</Table.Th>
              <Table.Th>{t('analytics.task')}</Table.Th>
              <Table.Th className="ates-num">{t('analytics.reward')}</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {series.map((p) => (
              <Table.Tr key={p.from}>
                <Table.Td>{p.from === p.to ? <Day value={p.from} /> : label(p.from, p.to)}</Table.Td>
                <Table.Td>{p.top ? (p.top.task.jiraId ? `${p.top.task.jiraId} ${p.top.task.title}` : p.top.task.title) : '—'}</Table.Td>
                <Table.Td className="ates-num">{p.top ? <Money value={p.top.reward} /> : '—'}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Paper>
    </Stack>
  );
}
