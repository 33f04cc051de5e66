// The signed-in popug's own name, email and beak print (contract v2: updateProfile, changePassword).
import { useState } from 'react';
import { useMutation } from 'urql';
import { Button, Paper, SimpleGrid, Stack, Text, TextInput, Title } from '@mantine/core';
import { notify } from '../lib/notify';
import { useTranslation } from 'react-i18next';
import { ChangePasswordDocument, UpdateProfileDocument } from '../graphql/documents';
import { session } from '../lib/session';
import { useSession } from '../lib/useSession';
import { describe } from '../lib/errors';
import { validatePassword } from '../lib/validate';
import { ErrorAlert, PasswordField } from '../components/common';

export function Profile() {
  const { t } = useTranslation();
  const { account } = useSession();
  const a = account!;
  const [name, setName] = useState({ fullName: a.fullName, email: a.email });
  const [pw, setPw] = useState({ current: '', next: '' });
  const [pwLocal, setPwLocal] = useState<string | undefined>();
  const [profileState, update] = useMutation(UpdateProfileDocument);
  const [pwState, change] = useMutation(ChangePasswordDocument);
  const pf = profileState.error ? describe(profileState.error).fields : {};
  const cf = pwState.error ? describe(pwState.error).fields : {};
  return (
    <Stack>
      <Title order={2}>{t('profile.title')}</Title>
      <Text>
        @{a.username} · {t(`roles.${a.role}`)}
      </Text>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Paper withBorder p="md">
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const r = await update({ fullName: name.fullName, email: name.email });
              if (!r.error && r.data) {
                session.updateAccount(r.data.updateProfile);
                notify({ color: 'green', message: t('profile.saved') });
              }
            }}
          >
            <Stack>
              <Title order={3} size="h4">
                {t('profile.details')}
              </Title>
              <TextInput label={t('auth.fullName')} value={name.fullName} onChange={(e) => setName({ ...name, fullName: e.currentTarget.value })} error={pf.fullName} required />
              <TextInput label={t('auth.email')} type="email" value={name.email} onChange={(e) => setName({ ...name, email: e.currentTarget.value })} error={pf.email} required />
              {profileState.error && !Object.keys(pf).length ? <ErrorAlert error={profileState.error} /> : null}
              <Button type="submit" loading={profileState.fetching}>
                {t('profile.save')}
              </Button>
            </Stack>
          </form>
        </Paper>
        <Paper withBorder p="md">
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              const bad = validatePassword(pw.next);
              setPwLocal(bad);
              if (bad) return;
              const r = await change({ currentPassword: pw.current, newPassword: pw.next });
              if (!r.error) {
                setPw({ current: '', next: '' });
                notify({ color: 'green', message: t('profile.passwordChanged') });
              }
            }}
          >
            <Stack>
              <Title order={3} size="h4">
                {t('profile.password')}
              </Title>
              <PasswordField
                label={t('profile.currentPassword')}
                autoComplete="current-password"
                value={pw.current}
                onChange={(e) => setPw({ ...pw, current: e.currentTarget.value })}
                error={cf.currentPassword}
                required
              />
              <PasswordField
                label={t('profile.newPassword')}
                description={t('auth.passwordHint')}
                autoComplete="new-password"
                value={pw.next}
                onChange={(e) => setPw({ ...pw, next: e.currentTarget.value })}
                error={pwLocal ? t(pwLocal) : cf.newPassword}
                required
              />
              {pwState.error && !Object.keys(cf).length ? <ErrorAlert error={pwState.error} /> : null}
              <Text size="xs" c="dimmed">
                {t('profile.passwordNote')}
              </Text>
              <Button type="submit" loading={pwState.fetching}>
                {t('profile.changePassword')}
              </Button>
            </Stack>
          </form>
        </Paper>
      </SimpleGrid>
    </Stack>
  );
}
