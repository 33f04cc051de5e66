import { NavLink, Outlet, useNavigate } from 'react-router';
import { Box, Button, Group, NativeSelect, Text, Title } from '@mantine/core';
import { useTranslation } from 'react-i18next';
import { session } from '../lib/session';
import { can, useSession } from '../lib/useSession';
import { LANGUAGES, setLanguage, type Language } from '../lib/i18n';
import { ConnectionBadge } from './common';

export function LanguageSwitch() {
  const { t, i18n } = useTranslation();
  return (
    <NativeSelect
      aria-label={t('nav.language')}
      size="xs"
      value={i18n.language}
      onChange={(e) => setLanguage(e.currentTarget.value as Language)}
      data={LANGUAGES.map((l) => ({ value: l, label: t(`languages.${l}`) }))}
      data-testid="language"
    />
  );
}

export function Layout() {
  const { t } = useTranslation();
  const { account } = useSession();
  const navigate = useNavigate();
  const role = account?.role;
  const links = [
    { to: '/tasks', label: t('nav.tasks'), show: true },
    { to: '/account', label: t('nav.account'), show: true },
    { to: '/accounting', label: t('nav.accounting'), show: can.accounting(role) },
    { to: '/analytics', label: t('nav.analytics'), show: can.analytics(role) },
    { to: '/admin/accounts', label: t('nav.accounts'), show: can.accounts(role) },
    { to: '/graphiql', label: t('nav.graphiql'), show: can.graphiql(role) },
  ].filter((l) => l.show);
  return (
    <>
      <a className="ates-skip" href="#main">
        {t('nav.skip')}
      </a>
      <Box component="header" p="xs" style={{ borderBottom: '1px solid #dee2e6', background: '#fff' }}>
        <Group justify="space-between" wrap="wrap" gap="xs">
          <Group gap="md" wrap="wrap">
            <Title order={1} size="h3">
              aTES
            </Title>
            <nav aria-label={t('nav.main')}>
              <Group gap={4} wrap="wrap">
                {links.map((l) => (
                  <Button key={l.to} component={NavLink} to={l.to} variant="subtle" size="compact-sm" color="dark">
                    {l.label}
                  </Button>
                ))}
              </Group>
            </nav>
          </Group>
          <Group gap="xs">
            <ConnectionBadge />
            <LanguageSwitch />
            <Button component={NavLink} to="/profile" variant="subtle" size="compact-sm" color="dark" data-testid="profile-link">
              {account?.fullName} · {t(`roles.${role}`)}
            </Button>
            <Button
              size="compact-sm"
              variant="outline"
              onClick={async () => {
                await session.logout();
                navigate('/login');
              }}
            >
              {t('nav.signOut')}
            </Button>
          </Group>
        </Group>
      </Box>
      <Box component="main" id="main" tabIndex={-1} maw={1280} mx="auto" p="md">
        <Outlet />
      </Box>
    </>
  );
}

export function Forbidden() {
  const { t } = useTranslation();
  return (
    <Box>
      <Title order={2}>{t('errors.forbiddenTitle')}</Title>
      <Text mt="sm">{t('errors.forbiddenScreen')}</Text>
    </Box>
  );
}
