import { useEffect, useState } from 'react';
import { Link, Navigate, useLocation, useSearchParams } from 'react-router';
import { Anchor, Box, Button, Center, Group, Paper, Stack, Text, TextInput, Title } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import { session } from '../lib/session';
import { useSession } from '../lib/useSession';
import { describe } from '../lib/errors';
import { ErrorAlert, PasswordField } from '../components/common';
import { LanguageSwitch } from '../components/Layout';
import { validateSignUp, type FieldErrors } from '../lib/validate';

function Frame({ title, children }: { title: string; children: React.ReactNode }) {
  const { t } = useTranslation();
  return (
    <Center mih="100vh" p="md" component="main">
      <Paper withBorder p="xl" w={420} maw="100%">
        <Group justify="space-between" mb="md">
          <Title order={1} size="h2">
            {title}
          </Title>
          <LanguageSwitch />
        </Group>
        <Text size="sm" c="dimmed" mb="md">
          {t('auth.tagline')}
        </Text>
        {children}
      </Paper>
    </Center>
  );
}

function useAfterSignIn() {
  const [params] = useSearchParams();
  const next = params.get('next');
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/tasks';
}

/** Field errors from the gateway (extensions.field / fields) merged over ours. */
function serverFields(err: unknown): FieldErrors {
  return describe(err).fields;
}

export function LoginScreen() {
  const { t } = useTranslation();
  const s = useSession();
  const loc = useLocation();
  const to = useAfterSignIn();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!performance.getEntriesByName('ates-first-screen').length) performance.mark('ates-first-screen');
  }, []);
  if (s.status === 'signedIn') return <Navigate to={to} replace />;
  const ended = (loc.state as { ended?: string } | null)?.ended === 'expired' || s.ended === 'expired';
  const fields = error ? serverFields(error) : {};
  return (
    <Frame title={t('auth.signInTitle')}>
      {ended && (
        <Text role="status" size="sm" mb="sm">
          {t('auth.sessionEnded')}
        </Text>
      )}
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await session.login(username.trim(), password);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Stack>
          <TextInput
            label={t('auth.username')}
            name="username"
            autoComplete="username"
            required
            value={username}
            onChange={(e) => setUsername(e.currentTarget.value)}
            error={fields.username}
          />
          <PasswordField
            label={t('auth.password')}
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
            error={fields.password}
          />
          <ErrorAlert error={error} />
          <Button type="submit" loading={busy}>
            {t('auth.signIn')}
          </Button>
          <Text size="sm">
            {t('auth.noAccount')}{' '}
            <Anchor component={Link} to="/signup">
              {t('auth.signUp')}
            </Anchor>
          </Text>
        </Stack>
      </form>
    </Frame>
  );
}

export function SignUpScreen() {
  const { t } = useTranslation();
  const s = useSession();
  const [v, setV] = useState({ username: '', password: '', fullName: '', email: '' });
  const [local, setLocal] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  if (s.status === 'signedIn') return <Navigate to="/tasks" replace />;
  const fields = { ...local, ...(error ? serverFields(error) : {}) };
  const field = (k: keyof typeof v) => ({
    value: v[k],
    name: k,
    onChange: (e: React.ChangeEvent<HTMLInputElement>) => setV({ ...v, [k]: e.currentTarget.value }),
    error: fields[k] ? (local[k] ? t(local[k]) : fields[k]) : undefined,
  });
  return (
    <Frame title={t('auth.signUpTitle')}>
      <form
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          const errs = validateSignUp(v);
          setLocal(errs);
          setError(null);
          if (Object.keys(errs).length) return;
          setBusy(true);
          try {
            await session.signUp({ ...v, username: v.username.trim() });
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <Stack>
          <TextInput label={t('auth.username')} description={t('auth.usernameHint')} autoComplete="username" required {...field('username')} />
          <TextInput label={t('auth.fullName')} autoComplete="name" required {...field('fullName')} />
          <TextInput label={t('auth.email')} type="email" autoComplete="email" required {...field('email')} />
          <PasswordField label={t('auth.password')} description={t('auth.passwordHint')} autoComplete="new-password" required {...field('password')} />
          {error && !Object.keys(serverFields(error)).length ? <ErrorAlert error={error} /> : null}
          <Button type="submit" loading={busy}>
            {t('auth.signUp')}
          </Button>
          <Box>
            <Text size="sm">
              {t('auth.haveAccount')}{' '}
              <Anchor component={Link} to="/login">
                {t('auth.signIn')}
              </Anchor>
            </Text>
          </Box>
        </Stack>
      </form>
    </Frame>
  );
}
