import { lazy, Suspense, useEffect, useMemo } from 'react';
import { BrowserRouter, Navigate, Route, Routes, useLocation } from 'react-router';
import { MantineProvider, Center, Loader } from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import { Provider as UrqlProvider } from 'urql';
import { I18nextProvider, useTranslation } from 'react-i18next';
import i18n from './lib/i18n';
import { theme } from './theme';
import { makeClient, live } from './lib/client';
import { useSession } from './lib/useSession';
import { Layout } from './components/Layout';
import { LoginScreen, SignUpScreen } from './screens/Auth';
import { TaskBoard } from './screens/TaskBoard';
import { MyAccount } from './screens/MyAccount';
import { Accounting, PopugLedger } from './screens/Accounting';
import { Analytics } from './screens/Analytics';
import { AccountsAdmin } from './screens/AccountsAdmin';
import { Profile } from './screens/Profile';
import { NotFound } from './screens/NotFound';

// The explorer is a chunk of its own, loaded only when /graphiql is opened (R-WEB-8).
const GraphiQLScreen = lazy(() => import('./screens/GraphiQLScreen'));

function Loading() {
  const { t } = useTranslation();
  return (
    <Center h="60vh" aria-busy="true">
      <Loader role="status" aria-label={t('common.loading')} />
    </Center>
  );
}

function Guarded({ children }: { children: React.ReactNode }) {
  const s = useSession();
  const loc = useLocation();
  if (s.status === 'loading') return <Loading />;
  if (s.status === 'signedOut') {
    const next = loc.pathname + loc.search;
    return <Navigate to={`/login${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`} replace state={{ ended: s.ended }} />;
  }
  return <>{children}</>;
}

function Routed() {
  const s = useSession();
  const accountId = s.account?.id;
  const client = useMemo(() => makeClient(), [accountId]);
  useEffect(() => {
    if (s.status === 'signedOut') live.reset();
  }, [s.status]);
  return (
    <UrqlProvider value={client}>
    <Routes>
      <Route path="/login" element={<LoginScreen />} />
      <Route path="/signup" element={<SignUpScreen />} />
      <Route
        element={
          <Guarded>
            <Layout />
          </Guarded>
        }
      >
        <Route index element={<Navigate to="/tasks" replace />} />
        <Route path="/tasks" element={<TaskBoard />} />
        <Route path="/account" element={<MyAccount />} />
        <Route path="/accounting" element={<Accounting />} />
        <Route path="/accounting/:accountId" element={<PopugLedger />} />
        <Route path="/analytics" element={<Analytics />} />
        <Route path="/admin/accounts" element={<AccountsAdmin />} />
        <Route path="/profile" element={<Profile />} />
        <Route
          path="/graphiql"
          element={
            <Suspense fallback={<Loading />}>
              <GraphiQLScreen />
            </Suspense>
          }
        />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
    </UrqlProvider>
  );
}

export function App() {
  return (
    <I18nextProvider i18n={i18n}>
      <MantineProvider theme={theme} defaultColorScheme="light">
        <Notifications position="top-right" />
        <BrowserRouter>
          <Routed />
        </BrowserRouter>
      </MantineProvider>
    </I18nextProvider>
  );
}
