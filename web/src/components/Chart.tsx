import { BarChart, LineChart } from '@mantine/charts';
import '@mantine/charts/styles.css';
import { useTranslation } from 'react-i18next';
import type { ChartPoint } from './common';

export default function Chart({ title, points, kind = 'bar' }: { title: string; points: ChartPoint[]; kind?: 'bar' | 'line' }) {
  const data = points.map((p) => ({ label: p.label, value: p.value, display: p.display }));
  const { i18n } = useTranslation();
  // Tooltips show the API's exact figure (display); the axis' round numbers are formatted as they are.
  const shown = new Map(points.map((p) => [p.value, p.display]));
  const axis = new Intl.NumberFormat(i18n.language, { style: 'currency', currency: 'USD', currencyDisplay: 'narrowSymbol', maximumFractionDigits: 0 });
  const common = {
    h: 220,
    data,
    dataKey: 'label',
    series: [{ name: 'value', label: title, color: '#1864ab' }],
    valueFormatter: (v: number) => shown.get(v) ?? axis.format(v),
    tickLine: 'y' as const,
    withTooltip: true,
  };
  return (
    <figure role="group" aria-label={title} style={{ margin: 0 }}>
      {kind === 'line' ? <LineChart {...common} curveType="linear" /> : <BarChart {...common} />}
    </figure>
  );
}
