// The task board by role (R-WEB-3, R-TASK-1…7, R-WEB-10).
import { test, expect, signIn, checkA11y, signOut } from './browser';
import { startGateway, type Gateway } from './gateway';

let gw: Gateway;
let kesha: { token: string; id: string };
test.beforeAll(async () => {
  gw = await startGateway();
  // kesha is the only popug tasks can be assigned to (admins and managers are not, R-TASK-3).
  await gw.createAccount('kesha', 'WORKER', 'Kesha Popugaev');
  await gw.createAccount('boss', 'MANAGER', 'Big Boss');
  kesha = await gw.login('kesha');
});
test.afterAll(async () => gw?.stop());

test('a popug creates a task, sees it in "my tasks", completes it and is paid (R-TASK-2, R-TASK-6, R-TASK-7, R-ACC-2)', async ({ page }) => {
  await signIn(page, gw, 'kesha');
  await checkA11y(page, 'task board (empty)');
  await page.getByRole('button', { name: 'New task' }).click();
  const dialog = page.getByRole('dialog', { name: 'New task' });
  await dialog.getByLabel('Title').fill('[UBERPOP-1] Fix the beak scanner');
  await dialog.getByLabel('Jira id (optional)').fill('uberpop-1');
  await dialog.getByRole('button', { name: 'Create task' }).click();
  await expect(dialog.getByLabel('Title')).toHaveAccessibleDescription(/must not contain \[ or \]/);
  await expect(dialog.getByLabel('Jira id (optional)')).toHaveAccessibleDescription(/UBERPOP-42/);
  await expect(dialog.getByLabel('Description')).toHaveAccessibleDescription(/Enter a description/);
  await checkA11y(page, 'new task dialog with field errors');
  await dialog.getByLabel('Title').fill('Fix the beak scanner');
  await dialog.getByLabel('Jira id (optional)').fill('UBERPOP-1');
  await dialog.getByLabel('Description').fill('It scans tails instead of beaks.');
  await dialog.getByRole('button', { name: 'Create task' }).click();
  await expect(dialog).toBeHidden();
  const row = page.locator('tr', { hasText: 'Fix the beak scanner' });
  await expect(row).toContainText('UBERPOP-1');
  await expect(row.getByTestId('assignee')).toHaveText('You');
  await expect(row.getByTestId('status')).toHaveText('Open');
  // The price comes from accounting (R-LIVE-2).
  await expect(row).toContainText('$');

  await page.getByText('My tasks', { exact: true }).click();
  await expect(page).toHaveURL(/view=mine/);
  await expect(row).toBeVisible();
  await row.getByRole('button', { name: 'Complete “Fix the beak scanner”' }).click();
  await expect(row.getByTestId('status')).toHaveText('Done');
  await expect(row.getByRole('button', { name: /Complete/ })).toHaveCount(0);

  await page.getByRole('link', { name: 'My account' }).click();
  await expect(page.getByRole('heading', { name: 'My account' })).toBeVisible();
  const ledger = page.getByTestId('ledger');
  await expect(ledger).toContainText('Fix the beak scanner');
  await expect(ledger).toContainText('It scans tails instead of beaks.');
  await expect(ledger.getByText('Fee', { exact: true })).toBeVisible();
  await expect(ledger.getByText('Reward', { exact: true })).toBeVisible();
  const api = await gw.gql('{ myBillingAccount { balance earnedToday } }', {}, kesha.token);
  const money = (s: string) => new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' }).format(s as never);
  await expect(page.getByTestId('balance')).toHaveText(money(api.myBillingAccount.balance));
  await expect(page.getByTestId('earned-today')).toHaveText(money(api.myBillingAccount.earnedToday));
  await checkA11y(page, 'my account');
});

test('the board filters by status and assignee, searches and pages (R-TASK-1, R-API-5)', async ({ page }) => {
  const chores = [];
  for (let i = 1; i <= 24; i++) chores.push(await gw.createTask(kesha.token, `Routine chore ${String(i).padStart(2, '0')}`));
  await gw.gql('mutation($id: ID!) { completeTask(id: $id) { id } }', { id: chores[0].id }, kesha.token);
  await gw.createTask(kesha.token, 'Calibrate the perch', 'Perch calibration for the night shift', 'PERCH-7');
  const count = async (status?: string) =>
    (await gw.gql('query($s: TaskStatus) { tasks(status: $s) { totalCount } }', { s: status ?? null }, kesha.token)).tasks.totalCount as number;
  const total = await count();
  const done = await count('DONE');
  await signIn(page, gw, 'kesha');
  const rows = page.getByTestId('task-table').locator('tbody tr');
  await expect(rows).toHaveCount(20);
  await expect(page.getByTestId('task-table').locator('caption')).toHaveText(`${total} tasks`);
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(rows).toHaveCount(Math.min(20, total - 20));
  await expect(page.getByText('Page 2')).toBeVisible();
  await page.getByRole('button', { name: 'Previous' }).click();
  await expect(rows).toHaveCount(20);

  await page.getByLabel('Status').selectOption('DONE');
  await expect(rows).toHaveCount(done);
  await expect(page.getByText('Routine chore 01', { exact: true })).toBeVisible();
  for (const st of await rows.getByTestId('status').allTextContents()) expect(st).toBe('Done');
  await page.getByLabel('Status').selectOption('');

  await page.getByLabel('Assignee').selectOption({ label: 'Kesha Popugaev' });
  await expect(page).toHaveURL(new RegExp(`assignee=${kesha.id}`));
  await expect(rows).toHaveCount(20);

  await page.getByLabel('Search').fill('calibr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('PERCH-7');
  await checkA11y(page, 'task board (search)');
});

test('a manager shuffles with a confirmation and sees the result; a popug has no such button (R-TASK-4)', async ({ page }) => {
  await signIn(page, gw, 'kesha');
  await expect(page.getByRole('button', { name: 'New task' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Assign tasks' })).toHaveCount(0);
  await signOut(page);

  const open = (await gw.gql('{ tasks(status: OPEN) { totalCount } }', {}, kesha.token)).tasks.totalCount as number;
  await signIn(page, gw, 'boss');
  await page.getByRole('button', { name: 'Assign tasks' }).click();
  const dialog = page.getByRole('dialog', { name: 'Reassign every open task?' });
  await expect(dialog).toBeVisible();
  await checkA11y(page, 'shuffle confirmation');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
  await page.getByRole('button', { name: 'Assign tasks' }).click();
  await dialog.getByRole('button', { name: 'Reassign all open tasks' }).click();
  await expect(page.getByText(`${open} tasks were reassigned.`)).toBeVisible();
});
