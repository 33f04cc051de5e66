import { lazy, Suspense, useState } from 'react';
import { Alert, Badge, Button, Group, Modal, PasswordInput, Text, Loader, type PasswordInputProps } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import { describe } from '../lib/errors';
import { formatMoney, formatDay } from '../lib/format';
import { useConnection } from '../lib/useSession';

/** An error as a person reads it (R-WEB-11): the code's message in the user's language. */
export function errorText(t: (k: string, o?: Record<string, unknown>) => string, err: unknown): string {
  const d = describe(err);
  const base = t(`errors.${d.code}`, { seconds: d.retryAfter ?? 5 });
  const detail = d.detail && d.code !== 'INTERNAL' && d.code !== 'NETWORK' && !Object.keys(d.fields).length ? d.detail : '';
  return detail ? `${base} ${t('errors.detail', { detail })}` : base;
}

export function ErrorAlert({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useTranslation();
  if (!error) return null;
  return (
    <Alert color="red" variant="light" title={t('errors.title')} role="alert" my="sm">
      <Text size="sm" c="#8a1c1c">
        {errorText(t, error)}
      </Text>
      {onRetry && (
        <Button size="xs" mt="xs" variant="outline" color="#a61e1e" onClick={onRetry}>
          {t('common.retry')}
        </Button>
      )}
    </Alert>
  );
}

export function Money({ value, colored }: { value: string; colored?: boolean }) {
  const { i18n } = useTranslation();
  const neg = value.startsWith('-');
  const color = colored ? (neg ? '#b02525' : value === '0.00' ? undefined : '#1e6b2f') : undefined;
  return (
    <span className="ates-num" style={color ? { color } : undefined}>
      {formatMoney(value, i18n.language)}
    </span>
  );
}

export function Day({ value, style }: { value: string; style?: 'medium' | 'short' | 'long' }) {
  const { i18n } = useTranslation();
  return <time dateTime={value}>{formatDay(value, i18n.language, style)}</time>;
}

/** The live connection, visible (R-WEB-11). */
export function ConnectionBadge() {
  const { t } = useTranslation();
  const s = useConnection();
  if (s === 'idle') return null; // nothing on this screen is live
  const color = s === 'connected' ? '#1e6b2f' : s === 'reconnecting' ? '#a34700' : '#495057';
  return (
    <Badge color={color} variant="filled" role="status" aria-live="polite" data-testid="connection" data-state={s}>
      {t(`live.${s}`)}
    </Badge>
  );
}

/** A button that asks first (shuffle, close the day). */
export function ConfirmButton({
  label,
  title,
  message,
  confirmLabel,
  onConfirm,
  color,
  loading,
}: {
  label: string;
  title: string;
  message: string;
  confirmLabel: string;
  onConfirm: () => void;
  color?: string;
  loading?: boolean;
}) {
  const { t } = useTranslation();
  const [open, setOpen] = useState(false);
  return (
    <>
      <Button color={color} onClick={() => setOpen(true)} loading={loading}>
        {label}
      </Button>
      <Modal opened={open} onClose={() => setOpen(false)} closeButtonProps={{ 'aria-label': t('common.close') }} title={title} centered>
        <Text mb="md">{message}</Text>
        <Group justify="flex-end">
          <Button variant="default" onClick={() => setOpen(false)}>
            {t('common.cancel')}
          </Button>
          <Button
            color={color}
            onClick={() => {
              setOpen(false);
              onConfirm();
            }}
            data-autofocus
          >
            {confirmLabel}
          </Button>
        </Group>
      </Modal>
    </>
  );
}

/** Forward cursor paging: the cursors of the pages before this one are kept for "previous". */
export function Pager({
  page,
  hasNext,
  onPrev,
  onNext,
  total,
}: {
  page: number;
  hasNext: boolean;
  onPrev: () => void;
  onNext: () => void;
  total?: number;
}) {
  const { t } = useTranslation();
  return (
    <Group justify="space-between" mt="sm" component="nav" aria-label={t('common.pages')}>
      <Text size="sm" c="dimmed">
        {total !== undefined ? t('common.total', { count: total }) : ''}
      </Text>
      <Group gap="xs">
        <Button variant="default" size="xs" onClick={onPrev} disabled={page === 0}>
          {t('common.previous')}
        </Button>
        <Text size="sm" aria-live="polite">
          {t('common.page', { page: page + 1 })}
        </Text>
        <Button variant="default" size="xs" onClick={onNext} disabled={!hasNext}>
          {t('common.next')}
        </Button>
      </Group>
    </Group>
  );
}

export function usePaging() {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const page = cursors.length - 1;
  return {
    after: cursors[page],
    page,
    next: (end: string | null | undefined) => end && setCursors((c) => [...c, end]),
    prev: () => setCursors((c) => (c.length > 1 ? c.slice(0, -1) : c)),
    reset: () => setCursors([null]),
  };
}

const ChartImpl = lazy(() => import('./Chart'));

export interface ChartPoint {
  label: string;
  value: number;
  display: string;
}

/** A chart (its own chunk, R-WEB perf budget) with a text summary for screen readers. */
export function Chart(props: { title: string; points: ChartPoint[]; kind?: 'bar' | 'line' }) {
  return (
    <Suspense fallback={<Loader size="sm" role="status" aria-label={props.title} />}>
      <ChartImpl {...props} />
    </Suspense>
  );
}

/** A beak-print field: invalid state announced (Mantine marks only its wrapper), toggle labelled. */
export function PasswordField(props: PasswordInputProps) {
  const { t } = useTranslation();
  return (
    <PasswordInput
      {...props}
      aria-invalid={props.error ? true : undefined}
      visibilityToggleButtonProps={{ 'aria-label': t('auth.showPassword') }}
    />
  );
}
