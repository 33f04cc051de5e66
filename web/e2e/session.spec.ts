// An access token that expires is refreshed without the person noticing, over HTTP and over the
// socket (R-SESS-1, R-SESS-4, R-WEB-11). The gateway runs with ATES_TOKEN_TTL=10s.
import { test, expect, signIn, visit } from './browser';
import { startGateway, type Gateway } from './gateway';

let gw: Gateway;
test.beforeAll(async () => {
  gw = await startGateway({ ATES_TOKEN_TTL: '10s' });
  await gw.createAccount('kesha', 'WORKER', 'Kesha Popugaev');
});
test.afterAll(async () => gw?.stop());

test('an expired access token is refreshed silently; the live board keeps working', async ({ page }) => {
  const refreshes: number[] = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && (r.postData() ?? '').includes('refreshSession')) refreshes.push(Date.now());
  });
  await signIn(page, gw, 'kesha');
  const t0 = Date.now();
  await visit(page, '/tasks?view=mine');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
  const n0 = refreshes.length; // the load's own refresh
  // The first token is refreshed before it expires, without anyone asking.
  await expect.poll(() => refreshes.length).toBeGreaterThan(n0);
  // Past the first token's lifetime: requests and pushes still go through.
  await page.waitForTimeout(Math.max(0, 12_000 - (Date.now() - t0)));
  const kesha = await gw.login('kesha');
  await gw.createTask(kesha.token, 'After the first token expired');
  await expect(page.getByText('After the first token expired', { exact: true })).toBeVisible();
  await page.getByRole('link', { name: 'My account' }).click();
  await expect(page.getByTestId('balance')).toHaveText(/^-\$\d/);
  await expect(page.getByRole('heading', { name: 'Sign in to aTES' })).toHaveCount(0);
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
  test.info().annotations.push({ type: 'refreshes', description: `${refreshes.length} refreshSession calls in ${((Date.now() - t0) / 1000).toFixed(1)} s` });
});
