// Sign in, sign up, sign out, sessions across reloads, languages (R-WEB-2, R-SESS-1, R-SESS-2,
// R-WEB-9, R-WEB-10, R-WEB-1).
import { test, expect, signIn, checkA11y, signOut } from './browser';
import { ADMIN, PASSWORD, startGateway, type Gateway } from './gateway';

let gw: Gateway;
test.beforeAll(async () => {
  gw = await startGateway();
  await gw.createAccount('kesha', 'WORKER', 'Kesha Popugaev');
});
test.afterAll(async () => gw?.stop());

test('sign-in and sign-up screens pass axe and load nothing from another origin (R-WEB-10, R-WEB-1)', async ({ page }) => {
  await page.goto(`${gw.url}/login`);
  await expect(page.getByRole('heading', { name: 'Sign in to aTES' })).toBeVisible();
  await checkA11y(page, 'sign in');
  await page.getByRole('link', { name: 'Sign up' }).click();
  await expect(page.getByRole('heading', { name: 'Join aTES' })).toBeVisible();
  await checkA11y(page, 'sign up');
});

test('a wrong beak print is refused with a message a person reads (R-API-4, R-WEB-11)', async ({ page }) => {
  await page.goto(`${gw.url}/login`);
  await page.getByLabel('Username').fill('kesha');
  await page.getByLabel(/Beak print/).fill('not-the-beak-print');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await expect(alert).toContainText('You are not signed in, or your session has ended');
  await expect(alert).not.toContainText('{');
  await checkA11y(page, 'sign in with an error');
});

test('sign-up shows field errors next to their fields, then signs the new popug in (R-AUTH-2, R-WEB-2)', async ({ page }) => {
  await page.goto(`${gw.url}/signup`);
  // Checked before sending.
  await page.getByLabel('Username').fill('No');
  await page.getByLabel('Full name').fill('Rio');
  await page.getByLabel('Email').fill('rio@uberpopug.com');
  await page.getByLabel(/Beak print/).fill('short');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByLabel('Username')).toHaveAccessibleDescription(/3–32 characters/);
  await expect(page.getByLabel(/Beak print/)).toHaveAccessibleDescription(/8–128 characters/);
  await checkA11y(page, 'sign up with field errors');
  // Refused by the gateway: the username is taken (extensions.field = username).
  await page.getByLabel('Username').fill('kesha');
  await page.getByLabel(/Beak print/).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByLabel('Username')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('Username')).toHaveAccessibleDescription(/taken|exists|in use/i);
  await page.getByLabel('Username').fill('rio');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('heading', { name: 'Task board' })).toBeVisible();
  await expect(page.getByTestId('profile-link')).toContainText('Rio · Popug');
});

test('a reload keeps the session; signing out ends it (R-SESS-1, R-SESS-2)', async ({ page, context }) => {
  await signIn(page, gw, 'kesha');
  // The access token lives in memory only: nothing in storage a script could read.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  expect(stored).not.toMatch(/eyJ/);
  const cookies = await context.cookies();
  const refresh = cookies.filter((c) => c.httpOnly);
  expect(refresh.length, 'an HttpOnly refresh cookie').toBeGreaterThan(0);
  for (const c of refresh) expect(c.path).toBe('/graphql');
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Task board' })).toBeVisible();
  await page.goto(`${gw.url}/account`);
  await expect(page.getByRole('heading', { name: 'My account' })).toBeVisible();
  await signOut(page);
  await page.goto(`${gw.url}/tasks`);
  await expect(page.getByRole('heading', { name: 'Sign in to aTES' })).toBeVisible();
  expect(page.url()).toContain('/login?next=%2Ftasks');
});

test('Russian follows the browser, can be switched and is remembered (R-WEB-9)', async ({ browser }) => {
  const ctx = await browser.newContext({ locale: 'ru-RU' });
  const page = await ctx.newPage();
  await page.goto(`${gw.url}/login`);
  await expect(page.getByRole('heading', { name: 'Вход в aTES' })).toBeVisible();
  await expect(page.locator('html')).toHaveAttribute('lang', 'ru');
  await checkA11y(page, 'sign in (ru)');
  await page.getByLabel('Язык').selectOption('en');
  await expect(page.getByRole('heading', { name: 'Sign in to aTES' })).toBeVisible();
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Sign in to aTES' })).toBeVisible();
  await page.getByLabel('Language').selectOption('ru');
  await page.getByLabel('Имя пользователя').fill(ADMIN.username);
  await page.getByLabel(/Отпечаток клюва/).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Войти' }).click();
  await expect(page.getByRole('heading', { name: 'Доска задач' })).toBeVisible();
  await ctx.close();
});
