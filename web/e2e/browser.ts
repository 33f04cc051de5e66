import { test as base, expect, type BrowserContext, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { PASSWORD, type Gateway } from './gateway';

/**
 * Every page of every test records each request it makes; a request to any origin but the
 * gateway's (or a CSP violation) fails the test (R-WEB-1: no CDN, works on a closed network).
 */
export const test = base.extend<{ foreign: string[] }>({
  foreign: async ({}, use) => {
    await use([]);
  },
  context: async ({ context, foreign }, use) => {
    await guard(context, foreign);
    await use(context);
    expect(foreign, 'requests to other origins').toEqual([]);
  },
});

export { expect };

/** Records requests to other origins into foreign, and CSP violations into window.__csp. */
export async function guard(context: BrowserContext, foreign: string[]) {
  context.on('request', (r) => {
    const u = r.url();
    if (u.startsWith('data:') || u.startsWith('blob:')) return;
    if (!/^(http|ws)s?:\/\/127\.0\.0\.1:\d+\//.test(u)) foreign.push(u);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { __csp: string[] }).__csp ??= [];
      (window as unknown as { __csp: string[] }).__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
}

export async function signIn(page: Page, gw: Gateway, username: string, password = PASSWORD) {
  await page.goto(`${gw.url}/login`);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel(/Beak print/).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Task board' })).toBeVisible();
}

/**
 * Signs out by the header's button and waits until the app shows the sign-in screen: it does so
 * only once the gateway has ended the session (logout answered), so a following sign-in or load
 * cannot be restored from the refresh cookie of the session just left.
 */
export async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in to aTES' })).toBeVisible();
}

/** axe-core on what the page shows now (R-WEB-10): no serious or critical violation. */
export async function checkA11y(page: Page, screen: string) {
  // Colours are judged as they settle: a modal fading in has translucent text until its
  // transition ends.
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'));
  const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const bad = r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => `${n.target.join(" ")} ${n.html.slice(0, 160)}`).slice(0, 5).join(", ")}`);
  expect(bad, `axe on ${screen}`).toEqual([]);
  const csp = await page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);
  expect(csp, `CSP violations on ${screen}`).toEqual([]);
}

/** A second person in their own browser context (cookies and storage of their own). */
export async function person(newContext: () => Promise<BrowserContext>, gw: Gateway, username: string, foreign: string[]) {
  const ctx = await newContext();
  await guard(ctx, foreign);
  const page = await ctx.newPage();
  await signIn(page, gw, username);
  return { ctx, page };
}

/** Opens a screen by its address inside the running app (a client-side navigation, no reload). */
export async function visit(page: Page, path: string) {
  await page.evaluate((p) => {
    history.pushState({}, '', p);
    dispatchEvent(new PopStateEvent('popstate'));
  }, path);
}
