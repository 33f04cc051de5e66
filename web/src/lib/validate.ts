// What the gateway refuses, checked before sending (R-AUTH-1, R-TASK-2); values are i18n keys.
export type FieldErrors = Record<string, string>;

export const USERNAME = /^[a-z0-9_.-]{3,32}$/;
export const JIRA_ID = /^[A-Z][A-Z0-9]*-[0-9]+$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function validatePassword(p: string): string | undefined {
  const n = [...p].length;
  return n < 8 || n > 128 ? 'validation.password' : undefined;
}

export function validateAccount(v: { username: string; password: string; fullName: string; email: string }): FieldErrors {
  const e: FieldErrors = {};
  if (!USERNAME.test(v.username.trim())) e.username = 'validation.username';
  const p = validatePassword(v.password);
  if (p) e.password = p;
  if (!v.fullName.trim() || v.fullName.length > 200) e.fullName = 'validation.fullName';
  if (!EMAIL.test(v.email.trim()) || v.email.length > 254) e.email = 'validation.email';
  return e;
}

export const validateSignUp = validateAccount;

export function validateTask(v: { title: string; jiraId: string; description: string }): FieldErrors {
  const e: FieldErrors = {};
  if (!v.title.trim() || [...v.title].length > 200) e.title = 'validation.title';
  else if (/[[\]]/.test(v.title)) e.title = 'validation.titleBrackets';
  if (v.jiraId.trim() && !JIRA_ID.test(v.jiraId.trim())) e.jiraId = 'validation.jiraId';
  if (!v.description.trim() || [...v.description].length > 10_000) e.description = 'validation.description';
  return e;
}
