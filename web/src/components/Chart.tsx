import { BarChart, LineChart } from '@mantine/charts';
import '@mantine/charts/styles.css';
import type { ChartPoint } from './common';

export default function Chart({ title, points, kind = 'bar' }: { title: string; points: ChartPoint[]; kind?: 'bar' | 'line' }) {
  const data = points.map((p) => ({ label: p.label, value: p.value, display: p.display }));
  const shown = new Map(points.map((p) => [p.value, p.display]));
  const common = {
    h: 220,
    data,
    dataKey: 'label',
    series: [{ name: 'value', label: title, color: '#1864ab' }],
    valueFormatter: (v: number) => shown.get(v) ?? String(v),
    tickLine: 'y' as const,
    withTooltip: true,
  };
  return (
    <figure role="group" aria-label={title} style={{ margin: 0 }}>
      {kind === 'line' ? <LineChart {...common} curveType="linear" /> : <BarChart {...common} />}
    </figure>
  );
}
