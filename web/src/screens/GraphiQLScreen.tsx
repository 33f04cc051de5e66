// GraphiQL for admins (R-WEB-8, R-API-3): the session's token goes with every request by
// itself, subscriptions share the tab's socket; loaded as a chunk of its own.
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import type { Fetcher } from '@graphiql/toolkit';
import { useTranslation } from 'react-i18next';
import { Box, Text, Title } from '@mantine/core';
import { authedFetch, live } from '../lib/client';
import { GRAPHQL_PATH } from '../lib/gqlFetch';
import { can, useSession } from '../lib/useSession';

const fetcher: Fetcher = (params, opts) => {
  const op = opts?.documentAST?.definitions.find(
    (d) => d.kind === 'OperationDefinition' && (!params.operationName || d.name?.value === params.operationName),
  );
  if (op && op.kind === 'OperationDefinition' && op.operation === 'subscription') {
    return live.ws.iterate({ query: params.query, variables: params.variables ?? undefined, operationName: params.operationName ?? undefined }) as never;
  }
  return authedFetch(GRAPHQL_PATH, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(params),
  }).then((r) => r.json());
};

const DEFAULT_QUERY = `# aTES GraphQL: your admin session's token is sent with every request.
query {
  me { username role }
  tasks(first: 5) { totalCount edges { node { title status assignee { username } } } }
}
`;

export default function GraphiQLScreen() {
  const { t } = useTranslation();
  const { account } = useSession();
  if (!can.graphiql(account?.role)) {
    return (
      <Box>
        <Title order={2}>{t('graphiql.title')}</Title>
        <Text mt="sm" data-testid="graphiql-forbidden">
          {t('graphiql.adminsOnly')}
        </Text>
      </Box>
    );
  }
  return (
    <Box h="calc(100vh - 120px)" data-testid="graphiql">
      <Title order={2} className="ates-skip">
        {t('graphiql.title')}
      </Title>
      <GraphiQL fetcher={fetcher} defaultQuery={DEFAULT_QUERY} />
    </Box>
  );
}
