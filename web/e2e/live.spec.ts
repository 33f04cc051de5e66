// Two people at once: live board and balances (R-LIVE-1, R-ACC-10, R-WEB-3, R-WEB-4, R-WEB-5),
// and the live connection dropped and restored (R-WEB-11).
import type { WebSocketRoute } from '@playwright/test';
import { test, expect, signIn, checkA11y, person, visit } from './browser';
import { startGateway, type Gateway } from './gateway';

let gw: Gateway;
let rio: { token: string; id: string };
let kesha: { token: string; id: string };
const money = (s: string) => new Intl.NumberFormat('en', { style: 'currency', currency: 'USD' }).format(s as never);

test.beforeAll(async () => {
  gw = await startGateway();
  await gw.createAccount('rio', 'WORKER', 'Rio Blue');
  rio = await gw.login('rio');
  await gw.createAccount('boss', 'MANAGER', 'Big Boss');
  // While rio is the only assignable popug, every task is rio's.
  for (let i = 1; i <= 20; i++) await gw.createTask(rio.token, `Perch duty ${i}`);
  await gw.createAccount('kesha', 'WORKER', 'Kesha Popugaev');
  kesha = await gw.login('kesha');
});
test.afterAll(async () => gw?.stop());

async function balanceOf(token: string): Promise<string> {
  return (await gw.gql('{ myBillingAccount { balance } }', {}, token)).myBillingAccount.balance;
}

test('(a) a manager shuffles: the popug\'s board and balance change without a reload', async ({ page, browser, foreign }) => {
  // kesha watches her tasks and, in a second tab of her own, her account.
  await signIn(page, gw, 'kesha');
  await visit(page, '/tasks?view=mine');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
  await expect(page.getByTestId('task-table').locator('tbody tr')).toHaveCount(0);
  // A second tab of the same browser: signed in by the refresh cookie (R-SESS-1).
  const account = await page.context().newPage();
  await account.goto(`${gw.url}/account`);
  await expect(account.getByTestId('balance')).toHaveText('$0.00');
  await expect(account.getByTestId('connection')).toHaveAttribute('data-state', 'connected');

  const boss = await person(() => browser.newContext(), gw, 'boss', foreign);
  await boss.page.getByRole('button', { name: 'Assign tasks' }).click();
  await boss.page.getByRole('button', { name: 'Reassign all open tasks' }).click();
  await expect(boss.page.getByText('20 tasks were reassigned.')).toBeVisible();

  const mine = (await gw.gql('{ myTasks(status: OPEN) { totalCount } }', {}, kesha.token)).myTasks.totalCount as number;
  expect(mine, 'tasks the shuffle gave kesha (all 20 stayed with rio: p = 2^-20)').toBeGreaterThan(0);
  await expect(page.getByTestId('task-table').locator('tbody tr')).toHaveCount(Math.min(mine, 20));
  await expect(account.getByTestId('balance')).toHaveText(money(await balanceOf(kesha.token)));
  expect(await account.getByTestId('balance').textContent()).toMatch(/^-\$/);
  await boss.ctx.close();
});

test('(b) a popug completes a task: the accountant sees the new balance live', async ({ page, browser, foreign }) => {
  await gw.createAccount('bux', 'ACCOUNTANT', 'Bux Counter');
  // kesha needs an open task: each new one goes to kesha, rio or bux at random.
  for (let i = 0; i < 40; i++) {
    const open = (await gw.gql('{ myTasks(status: OPEN) { totalCount } }', {}, kesha.token)).myTasks.totalCount as number;
    if (open > 0) break;
    await gw.createTask(rio.token, `Seed sorting ${i}`);
  }
  await signIn(page, gw, 'kesha');
  await visit(page, '/tasks?view=mine');
  const complete = page.getByRole('button', { name: /^Complete “/ }).first();
  await expect(complete).toBeVisible();
  const title = (await complete.getAttribute('aria-label'))!.replace(/^Complete “(.*)”$/, '$1');

  const bux = await person(() => browser.newContext(), gw, 'bux', foreign);
  await bux.page.getByRole('link', { name: 'Accounting' }).click();
  const row = bux.page.locator('tr[data-account="kesha"]');
  await expect(row.getByTestId('balance')).toHaveText(money(await balanceOf(kesha.token)));
  await expect(bux.page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
  await checkA11y(bux.page, 'accounting');

  await complete.click();
  await expect(page.locator('tr', { hasText: title }).getByTestId('status')).toHaveText('Done');
  const after = await balanceOf(kesha.token);
  await expect(row.getByTestId('balance')).toHaveText(money(after));
  await bux.ctx.close();
});

test('the live connection dropped and restored is shown, and what it missed is refetched (R-WEB-11)', async ({ page }) => {
  let blocked = false;
  const sockets: WebSocketRoute[] = [];
  await page.routeWebSocket(/\/graphql$/, (ws) => {
    if (blocked) return void ws.close({ code: 1012, reason: 'restarting' });
    ws.connectToServer();
    sockets.push(ws);
  });
  await signIn(page, gw, 'kesha');
  await visit(page, '/tasks?view=mine');
  const badge = page.getByTestId('connection');
  await expect(badge).toHaveAttribute('data-state', 'connected');
  await expect(badge).toHaveText('Live');
  const before = await page.getByTestId('task-table').locator('caption').textContent();

  blocked = true;
  for (const s of sockets) await s.close({ code: 1012, reason: 'restarting' });
  await expect(badge).toHaveAttribute('data-state', 'reconnecting');
  await expect(badge).toHaveText('Connection lost — reconnecting…');
  // Meanwhile a task reaches kesha. Each new task goes to a popug drawn from the tasks service's
  // own copy of the accounts (kept by events, so a deactivation reaches it a moment later):
  // create until the gateway answers that one is kesha's.
  let missed = '';
  for (let i = 0; i < 40 && !missed; i++) {
    const t = await gw.createTask(kesha.token, `Missed while offline ${i}`);
    if (t.assignee.id === kesha.id) missed = `Missed while offline ${i}`;
  }
  expect(missed, 'a task of kesha\'s created while the socket was down').not.toBe('');
  const total = (await gw.gql('{ myTasks { totalCount } }', {}, kesha.token)).myTasks.totalCount as number;
  expect(`${total} task${total === 1 ? '' : 's'}`).not.toBe(before);
  blocked = false;
  // The reconnection backoff is capped at 10 s (±25 %): the badge is back after at most one
  // more wait and a connection, well inside the expect timeout.
  await expect(badge).toHaveAttribute('data-state', 'connected');
  await expect(page.getByTestId('task-table').locator('caption')).toHaveText(`${total} task${total === 1 ? '' : 's'}`);
  await expect(page.getByText(missed, { exact: true })).toBeVisible();
  await checkA11y(page, 'task board after reconnect');
});

test('a subscription ended with RESYNC refetches and resubscribes; UNAUTHENTICATED refreshes the session first (R-LIVE-1, R-SESS-4, R-WEB-11)', async ({ page }) => {
  let client: WebSocketRoute | undefined;
  const subscribes: { id: string; query: string; variables?: Record<string, unknown> }[] = [];
  await page.routeWebSocket(/\/graphql$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      const msg = JSON.parse(String(m));
      if (msg.type === 'subscribe') subscribes.push({ id: msg.id, query: msg.payload.query, variables: msg.payload.variables });
      server.send(m);
    });
    server.onMessage((m) => ws.send(m));
    client = ws;
  });
  let refetches = 0;
  let refreshes = 0;
  page.on('request', (r) => {
    const body = r.postData() ?? '';
    if (body.includes('"MyTasks"')) refetches++;
    if (body.includes('refreshSession')) refreshes++;
  });
  // The subscriptions of "my tasks" (the board followed all tasks before the visit, perhaps
  // long enough to subscribe), one per id: a socket that reconnects under load sends the same
  // subscription again under its id, and each new subscription gets a new id.
  const boardSubs = () => [
    ...new Map(subscribes.filter((s) => s.query.includes('taskChanged') && s.variables?.assigneeId === kesha.id).map((s) => [s.id, s])).values(),
  ];
  await signIn(page, gw, 'kesha');
  await visit(page, '/tasks?view=mine');
  await expect(page.getByTestId('connection')).toHaveAttribute('data-state', 'connected');
  await expect.poll(() => boardSubs().length).toBe(1);

  // The gateway ends the follower with RESYNC: the board refetches and follows again, no error shown.
  const r0 = refetches;
  client!.send(JSON.stringify({ id: boardSubs()[0].id, type: 'error', payload: [{ message: 'too far behind', extensions: { code: 'RESYNC' } }] }));
  await expect.poll(() => boardSubs().length).toBe(2);
  await expect.poll(() => refetches).toBeGreaterThan(r0);
  await expect(page.getByRole('alert')).toHaveCount(0);

  // The gateway ends it with UNAUTHENTICATED (its token expired): refresh, then follow again.
  const f0 = refreshes;
  client!.send(JSON.stringify({ id: boardSubs()[1].id, type: 'error', payload: [{ message: 'token expired', extensions: { code: 'UNAUTHENTICATED' } }] }));
  await expect.poll(() => refreshes).toBeGreaterThan(f0);
  await expect.poll(() => boardSubs().length).toBe(3);
  await expect(page.getByRole('alert')).toHaveCount(0);
  await expect(page.getByRole('heading', { name: 'Task board' })).toBeVisible();

  // And the new subscription carries pushes.
  // (Each new task goes to a random assignable popug: create until one is kesha's.)
  let title = '';
  for (let i = 0; i < 40 && !title; i++) {
    const t = await gw.createTask(kesha.token, `After the resubscription ${i}`);
    if (t.assignee.id === kesha.id) title = `After the resubscription ${i}`;
  }
  await expect(page.getByText(title, { exact: true })).toBeVisible();
});
