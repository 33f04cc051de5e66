import { Title, Text, Anchor } from '@mantine/core';
import { Link } from 'react-router';
import { useTranslation } from 'react-i18next';

export function NotFound() {
  const { t } = useTranslation();
  return (
    <>
      <Title order={2}>{t('notFound.title')}</Title>
      <Text mt="sm">
        {t('notFound.text')}{' '}
        <Anchor component={Link} to="/tasks">
          {t('nav.tasks')}
        </Anchor>
      </Text>
    </>
  );
}
