import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import '@mantine/core/styles.css';
import '@mantine/notifications/styles.css';
import './app.css';
import { initI18n } from './lib/i18n';
import { session } from './lib/session';
import { loadServerInfo } from './lib/businessDay';
import { App } from './App';

initI18n();
// On load: is there a session behind the refresh cookie (R-SESS-1)? And the business timezone.
void session.refresh();
void loadServerInfo();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
