import { Group, TextInput } from '@mantine/core';
import { useTranslation } from 'react-i18next';

/** Two native date inputs (keyboard and screen reader friendly everywhere). */
export function DateRange({
  from,
  to,
  max,
  onChange,
}: {
  from: string;
  to: string;
  max: string;
  onChange: (from: string, to: string) => void;
}) {
  const { t } = useTranslation();
  return (
    <Group align="flex-end">
      <TextInput type="date" label={t('range.from')} value={from} max={to} onChange={(e) => e.currentTarget.value && onChange(e.currentTarget.value, to)} />
      <TextInput type="date" label={t('range.to')} value={to} min={from} max={max} onChange={(e) => e.currentTarget.value && onChange(from, e.currentTarget.value)} />
    </Group>
  );
}
