// Notifications with a labelled close button and text at AA contrast (R-WEB-10).
import { notifications } from '@mantine/notifications';
import i18n from './i18n';

export function notify(n: { color: 'green' | 'red'; title?: string; message: string }) {
  notifications.show({
    ...n,
    color: n.color === 'green' ? '#1e6b2f' : '#a61e1e',
    closeButtonProps: { 'aria-label': i18n.t('common.close') },
    styles: { description: { color: '#212529' }, title: { color: '#212529' } },
  });
}
