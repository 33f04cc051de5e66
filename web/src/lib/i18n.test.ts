// R-WEB-9: both catalogues complete, plurals right in both languages.
import { describe, expect, it } from 'vitest';
import i18next from 'i18next';
import en from '../locales/en.json';
import ru from '../locales/ru.json';
import { pickLanguage } from './i18n';
import { ERROR_CODES } from './errors';

type Tree = { [k: string]: string | Tree };
const PLURAL = /_(zero|one|two|few|many|other)$/;

function keys(t: Tree, prefix = ''): string[] {
  return Object.entries(t).flatMap(([k, v]) => (typeof v === 'string' ? [prefix + k] : keys(v, `${prefix}${k}.`)));
}

function plurals(all: string[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const k of all) {
    const p = PLURAL.exec(k);
    if (!p) continue;
    const base = k.slice(0, -p[0].length);
    if (!m.has(base)) m.set(base, new Set());
    m.get(base)!.add(p[1]);
  }
  return m;
}

describe('catalogues', () => {
  const enKeys = keys(en as Tree);
  const ruKeys = keys(ru as Tree);

  it('have exactly the same keys, plural forms aside', () => {
    const base = (ks: string[]) => [...new Set(ks.map((k) => k.replace(PLURAL, '')))].sort();
    expect(base(ruKeys)).toEqual(base(enKeys));
  });

  it('give every plural key exactly the forms its language has', () => {
    for (const [lang, ks] of [
      ['en', enKeys],
      ['ru', ruKeys],
    ] as const) {
      const forms = new Set(new Intl.PluralRules(lang).resolvedOptions().pluralCategories);
      for (const [base, have] of plurals(ks)) {
        expect([...have].sort(), `${lang} ${base}`).toEqual([...forms].sort());
      }
    }
  });

  it('have no empty message', () => {
    for (const [lang, t] of [
      ['en', en],
      ['ru', ru],
    ] as const) {
      for (const k of keys(t as Tree)) {
        const v = k.split('.').reduce<unknown>((o, p) => (o as Tree)[p], t);
        expect(typeof v === 'string' && v.trim().length > 0, `${lang} ${k}`).toBe(true);
      }
    }
  });

  it('have a message for every error code (R-WEB-11, R-API-4)', () => {
    for (const code of ERROR_CODES) {
      expect((en as Tree & { errors: Tree }).errors[code], code).toBeTypeOf('string');
      expect((ru as Tree & { errors: Tree }).errors[code], code).toBeTypeOf('string');
    }
  });
});

describe('plurals', () => {
  const i18n = i18next.createInstance();
  void i18n.init({ resources: { en: { translation: en }, ru: { translation: ru } }, lng: 'ru', initAsync: false });

  it('Russian: 1 задача, 2 задачи, 5 задач, 21 задача, 11 задач', () => {
    const t = i18n.getFixedT('ru');
    expect(t('tasks.caption', { count: 1 })).toBe('1 задача');
    expect(t('tasks.caption', { count: 2 })).toBe('2 задачи');
    expect(t('tasks.caption', { count: 5 })).toBe('5 задач');
    expect(t('tasks.caption', { count: 21 })).toBe('21 задача');
    expect(t('tasks.caption', { count: 11 })).toBe('11 задач');
    expect(t('analytics.popugs', { count: 3 })).toBe('3 попуга');
    expect(t('analytics.popugs', { count: 7 })).toBe('7 попугов');
  });

  it('English: 1 task, 2 tasks', () => {
    const t = i18n.getFixedT('en');
    expect(t('tasks.caption', { count: 1 })).toBe('1 task');
    expect(t('tasks.caption', { count: 2 })).toBe('2 tasks');
    expect(t('tasks.reassigned', { count: 1 })).toBe('1 task was reassigned.');
  });
});

describe('pickLanguage', () => {
  it('follows the remembered choice, then the browser, then English', () => {
    expect(pickLanguage('ru', ['en-US'])).toBe('ru');
    expect(pickLanguage(null, ['ru-RU', 'en'])).toBe('ru');
    expect(pickLanguage(null, ['de-DE', 'en-GB'])).toBe('en');
    expect(pickLanguage('xx', ['fr'])).toBe('en');
  });
});
