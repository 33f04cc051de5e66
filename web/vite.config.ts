import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// The gateway `npm run dev` proxies to (GraphQL over HTTP and WebSocket).
const gateway = process.env.ATES_URL ?? 'http://localhost:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/graphql': { target: gateway, ws: true, changeOrigin: false },
      '/.well-known': { target: gateway },
    },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    // Every browser the app supports speaks ES2022; nothing is transpiled beyond that.
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
    reportCompressedSize: false,
  },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    environment: 'node',
  },
});
