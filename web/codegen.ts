import { readFileSync, readdirSync } from 'node:fs';
import type { CodegenConfig } from '@graphql-codegen/cli';

// The app is typed against the gateway's own schema files once they carry contract version 2
// (refreshSession and the rest); until then against the contract, api/schema.graphql.
const gatewayDir = '../graph/schema';
const gatewayHasV2 = readdirSync(gatewayDir)
  .filter((f) => f.endsWith('.graphqls'))
  .some((f) => readFileSync(`${gatewayDir}/${f}`, 'utf8').includes('refreshSession'));

const config: CodegenConfig = {
  schema: gatewayHasV2 ? `${gatewayDir}/*.graphqls` : '../api/schema.graphql',
  documents: ['src/**/*.{ts,tsx}', '!src/gql/**'],
  ignoreNoDocuments: false,
  generates: {
    'src/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { Time: 'string', Date: 'string', Money: 'string' },
        strictScalars: true,
      },
    },
  },
  hooks: {},
};

export default config;
