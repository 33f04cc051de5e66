import { defineConfig } from '@playwright/test';

// Debian's chromium, never a downloaded browser build (`playwright install` is never run).
export const CHROMIUM = process.env.ATES_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: 'e2e',
  // One file at a time: each starts its own ates binary, and the machine has two cores.
  workers: 1,
  fullyParallel: false,
  // Ceilings, not waits: every step waits for a state on screen or an answer and goes on as soon
  // as it is there. They are set for a CI machine whose two cores are shared with other suites
  // (a sign-in hashes a beak print with argon2id; at a load average of 20 that takes seconds).
  timeout: 180_000,
  expect: { timeout: 30_000 },
  // A retry would hide a flaky test: each runs once and must pass.
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  globalSetup: './e2e/global-setup.ts',
  use: {
    browserName: 'chromium',
    headless: true,
    locale: 'en-US',
    timezoneId: 'UTC',
    viewport: { width: 1280, height: 900 },
    trace: 'off',
    launchOptions: {
      executablePath: CHROMIUM,
      // Playwright gives every launch a fresh temporary profile (user-data dir).
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
