// ADMIN and ACCOUNTANT screens: accounts, accounting, analytics, GraphiQL (R-WEB-5…8, R-WEB-10).
import { test, expect, signIn, checkA11y, visit, signOut } from './browser';
import { ADMIN, startGateway, type Gateway } from './gateway';

let gw: Gateway;
let kesha: { token: string; id: string };
test.beforeAll(async () => {
  gw = await startGateway();
  await gw.createAccount('kesha', 'WORKER', 'Kesha Popugaev');
  await gw.createAccount('bux', 'ACCOUNTANT', 'Bux Counter');
  await gw.createAccount('boss', 'MANAGER', 'Big Boss');
  kesha = await gw.login('kesha');
  // kesha earns: tasks go to kesha or bux (both assignable); kesha completes hers.
  for (let i = 1; i <= 6; i++) {
    const t = await gw.createTask(kesha.token, `Feather count ${i}`, `Count the feathers of cage ${i}`, `FEATHER-${i}`);
    if (t.assignee.id === kesha.id) await gw.gql('mutation($id: ID!) { completeTask(id: $id) { id } }', { id: t.id }, kesha.token);
  }
});
test.afterAll(async () => gw?.stop());

test('the admin manages accounts: list, search, create with a role, change role, deactivate, reactivate (R-WEB-7)', async ({ page }) => {
  await signIn(page, gw, ADMIN.username, ADMIN.password);
  await page.getByRole('link', { name: 'Accounts' }).click();
  await expect(page.getByRole('heading', { name: 'Accounts' })).toBeVisible();
  const table = page.getByTestId('accounts');
  const listed = (await gw.gql('{ accounts(first: 100) { totalCount } }', {}, await gw.adminToken())).accounts.totalCount as number;
  await expect(table.locator('tbody tr')).toHaveCount(listed);
  await checkA11y(page, 'accounts');

  await page.getByRole('button', { name: 'New account' }).click();
  const dialog = page.getByRole('dialog', { name: 'New account' });
  await dialog.getByLabel('Username').fill('kesha');
  await dialog.getByLabel('Full name').fill('Second Kesha');
  await dialog.getByLabel('Email').fill('kesha2@uberpopug.com');
  await dialog.getByLabel(/Beak print/).fill('beak-print-456');
  await dialog.getByLabel('Role', { exact: true }).selectOption('MANAGER');
  await dialog.getByRole('button', { name: 'Create account' }).click();
  await expect(dialog.getByLabel('Username')).toHaveAttribute('aria-invalid', 'true');
  await checkA11y(page, 'new account dialog with a field error');
  await dialog.getByLabel('Username').fill('senior_popug');
  await dialog.getByRole('button', { name: 'Create account' }).click();
  await expect(dialog).toBeHidden();
  const row = table.locator('tr[data-account="senior_popug"]');
  await expect(row.getByLabel('Role of senior_popug')).toHaveValue('MANAGER');

  await row.getByLabel('Role of senior_popug').selectOption('ACCOUNTANT');
  await expect(page.getByText('Role of senior_popug changed.')).toBeVisible();
  await row.getByRole('button', { name: 'Deactivate senior_popug' }).click();
  await expect(row).toContainText('Deactivated');
  await row.getByRole('button', { name: 'Reactivate senior_popug' }).click();
  await expect(row).toContainText('Active');
  const api = await gw.gql('{ searchAccounts(search: "senior_") { edges { node { role active } } } }', {}, await gw.adminToken());
  expect(api.searchAccounts.edges[0].node).toEqual({ role: 'ACCOUNTANT', active: true });

  await page.getByLabel('Search').fill('counter');
  await expect(table.locator('tbody tr')).toHaveCount(1);
  await expect(table).toContainText('bux');
  await page.getByLabel('Search').fill('');
  await page.getByLabel('Role', { exact: true }).selectOption('WORKER');
  await expect(table.locator('tbody tr')).toHaveCount(1);
});

test('the accountant sees company earnings, every account, any popug\'s log, and closes the day (R-WEB-5, R-ACC-8)', async ({ page }) => {
  await signIn(page, gw, 'bux');
  await expect(page.getByRole('link', { name: 'Analytics' })).toHaveCount(0);
  await page.getByRole('link', { name: 'Accounting' }).click();
  await expect(page.getByRole('heading', { name: 'Accounting' })).toBeVisible();
  const today = (await gw.gql('{ analyticsSummary { date } }', {}, await gw.adminToken())).analyticsSummary.date;
  const earn = (await gw.gql('query($d: Date!) { managementEarnings(from: $d, to: $d) { managementEarnings } }', { d: today }, await gw.adminToken()))
    .managementEarnings[0].managementEarnings;
  const money = (s: string) => new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' }).format(s as never);
  await expect(page.getByTestId('company-today')).toHaveText(money(earn));
  await expect(page.getByRole('group', { name: 'Management earnings per day' })).toBeVisible();
  const accounts = (await gw.gql('{ billingAccounts(first: 100) { totalCount } }', {}, await gw.adminToken())).billingAccounts.totalCount as number;
  await expect(page.getByTestId('billing-accounts').locator('tbody tr')).toHaveCount(accounts);
  await checkA11y(page, 'accounting');

  await page.getByRole('link', { name: 'Kesha Popugaev' }).click();
  await expect(page.getByRole('heading', { name: 'Account of Kesha Popugaev' })).toBeVisible();
  await expect(page.getByTestId('ledger')).toContainText('Count the feathers');
  await checkA11y(page, 'a popug\'s audit log');
  await page.getByRole('link', { name: '← Accounting' }).click();

  const before = (await gw.gql('{ myBillingAccount { balance } }', {}, kesha.token)).myBillingAccount.balance as string;
  await page.getByRole('button', { name: 'Close the day now' }).click();
  await checkA11y(page, 'close-the-day confirmation');
  await page.getByRole('button', { name: 'Pay out now' }).click();
  await expect(page.getByText(/accounts? paid/)).toBeVisible();
  const kesh = page.locator('tr[data-account="kesha"]').getByTestId('balance');
  if (!before.startsWith('-') && before !== '0.00') await expect(kesh).toHaveText('$0.00');
  else await expect(kesh).toHaveText(money(before));
});

test('the admin reads analytics: a day\'s summary, the most expensive task and its series (R-WEB-6, R-AN-2, R-AN-3)', async ({ page }) => {
  await signIn(page, gw, ADMIN.username, ADMIN.password);
  await page.getByRole('link', { name: 'Analytics' }).click();
  await expect(page.getByRole('heading', { name: 'Analytics' })).toBeVisible();
  const s = (await gw.gql('{ analyticsSummary { managementEarnings negativeBalanceCount } }', {}, await gw.adminToken())).analyticsSummary;
  const money = (v: string) => new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' }).format(v as never);
  await expect(page.getByTestId('an-earnings')).toHaveText(money(s.managementEarnings));
  await expect(page.getByTestId('an-negative')).toHaveText(`${s.negativeBalanceCount} popug${s.negativeBalanceCount === 1 ? '' : 's'}`);
  await expect(page.getByTestId('an-top')).toContainText('FEATHER-');
  await expect(page.getByTestId('an-series').locator('tbody tr')).toHaveCount(30);
  await page.getByLabel('Series by').selectOption('MONTH');
  const today = (await gw.gql('{ analyticsSummary { date } }', {}, await gw.adminToken())).analyticsSummary.date as string;
  const from = new Date(Date.parse(today) - 29 * 86_400_000).toISOString().slice(0, 10);
  const months = (await gw.gql('query($f: Date!, $t: Date!) { mostExpensiveTasks(from: $f, to: $t, period: MONTH) { from } }', { f: from, t: today }, await gw.adminToken()))
    .mostExpensiveTasks.length as number;
  await expect(page.getByTestId('an-series').locator('tbody tr')).toHaveCount(months);
  await expect(page.getByRole('group', { name: 'Reward' })).toBeVisible();
  await checkA11y(page, 'analytics');
});

test('GraphiQL sends the admin\'s token by itself; docs work; others get a message (R-WEB-8, R-API-3)', async ({ page }) => {
  await signIn(page, gw, ADMIN.username, ADMIN.password);
  const js: string[] = [];
  page.on('response', (r) => r.url().endsWith('.js') && js.push(r.url()));
  await page.getByRole('link', { name: 'GraphiQL' }).click();
  const gq = page.getByTestId('graphiql');
  await expect(gq.locator('.graphiql-container')).toBeVisible();
  expect(js.some((u) => /GraphiQLScreen-/.test(u)), 'GraphiQL comes in a chunk of its own').toBe(true);
  await expect(gq.locator('.graphiql-query-editor')).toContainText('me { username role }');
  await gq.getByRole('button', { name: /Execute query/ }).click();
  await expect(gq.locator('.result-window')).toContainText('"username": "admin"');
  await gq.getByRole('button', { name: /Show Documentation Explorer/ }).click();
  await expect(gq.locator('.graphiql-doc-explorer')).toContainText('Query');
  await gq.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().click();
  await expect(gq.locator('.graphiql-doc-explorer')).toContainText('myTasks');
  await signOut(page);

  await signIn(page, gw, 'kesha');
  await expect(page.getByRole('link', { name: 'GraphiQL' })).toHaveCount(0);
  await visit(page, '/graphiql');
  await expect(page.getByTestId('graphiql-forbidden')).toHaveText(/for admins/);
  await checkA11y(page, 'GraphiQL for a non-admin');
});
