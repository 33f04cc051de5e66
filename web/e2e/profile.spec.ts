// Self-service: name, email and beak print (contract v2: updateProfile, changePassword; R-SESS-3),
// and what a popug sees of screens that are not theirs (R-WEB-2, R-WEB-10).
import { test, expect, signIn, checkA11y, visit, signOut } from './browser';
import { PASSWORD, startGateway, type Gateway } from './gateway';

let gw: Gateway;
test.beforeAll(async () => {
  gw = await startGateway();
  await gw.createAccount('kesha', 'WORKER', 'Kesha Popugaev');
  await gw.createAccount('rio', 'WORKER', 'Rio Blue');
});
test.afterAll(async () => gw?.stop());

test('a popug changes name, email and beak print, and signs in with the new one', async ({ page }) => {
  await signIn(page, gw, 'kesha');
  await page.getByTestId('profile-link').click();
  await expect(page.getByRole('heading', { name: 'Profile' })).toBeVisible();
  await checkA11y(page, 'profile');
  await page.getByLabel('Full name').fill('Kesha the Great');
  await page.getByLabel('Email').fill('great@uberpopug.com');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByText('Profile saved.')).toBeVisible();
  await expect(page.getByTestId('profile-link')).toContainText('Kesha the Great');

  await page.getByLabel('Current beak print').fill('not-my-beak-print');
  await page.getByLabel('New beak print').fill('new-beak-print-1');
  await page.getByRole('button', { name: 'Change beak print' }).click();
  // extensions.field = currentPassword: the gateway's words under that field.
  await expect(page.getByLabel('Current beak print')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('Current beak print')).toHaveAccessibleDescription(/current beak print is wrong/);
  await checkA11y(page, 'profile with a field error');
  await page.getByLabel('Current beak print').fill(PASSWORD);
  await page.getByRole('button', { name: 'Change beak print' }).click();
  await expect(page.getByText(/Beak print changed/)).toBeVisible();
  await signOut(page);
  await signIn(page, gw, 'kesha', 'new-beak-print-1');
  const me = (await gw.gql('{ me { fullName email } }', {}, (await gw.login('kesha', 'new-beak-print-1')).token)).me;
  expect(me).toEqual({ fullName: 'Kesha the Great', email: 'great@uberpopug.com' });
});

test('a popug opening an admin screen or an unknown address is told so, in words', async ({ page }) => {
  await signIn(page, gw, 'rio');
  for (const path of ['/accounting', '/analytics', '/admin/accounts']) {
    await visit(page, path);
    await expect(page.getByRole('heading', { name: 'Not for your role' })).toBeVisible();
  }
  await checkA11y(page, 'not for your role');
  await page.goto(`${gw.url}/no/such/screen`);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  await checkA11y(page, 'not found');
});
