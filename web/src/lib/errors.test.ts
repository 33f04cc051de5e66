// R-API-4, R-WEB-11: codes and field errors read off any error shape the app meets.
import { describe as group, expect, it } from 'vitest';
import { CombinedError } from '@urql/core';
import { ApiError, describe } from './errors';
import { validateAccount, validateTask } from './validate';

group('describe', () => {
  it('reads extensions.field', () => {
    const d = describe(new ApiError([{ message: 'username is taken', extensions: { code: 'BAD_USER_INPUT', field: 'username' } }]));
    expect(d.code).toBe('BAD_USER_INPUT');
    expect(d.fields).toEqual({ username: 'username is taken' });
  });

  it('reads extensions.fields for several invalid fields', () => {
    const d = describe([
      {
        message: 'invalid input',
        extensions: {
          code: 'BAD_USER_INPUT',
          fields: [
            { field: 'title', message: 'title must not contain [ or ]' },
            { field: 'jiraId', message: 'jiraId must look like UBERPOP-42' },
          ],
        },
      },
    ]);
    expect(d.fields).toEqual({ title: 'title must not contain [ or ]', jiraId: 'jiraId must look like UBERPOP-42' });
  });

  it('reads retryAfter of UNAVAILABLE', () => {
    const d = describe([{ message: 'busy', extensions: { code: 'UNAVAILABLE', retryAfter: 3 } }]);
    expect(d).toMatchObject({ code: 'UNAVAILABLE', retryAfter: 3 });
  });

  it('reads urql errors, network failures and unknown codes', () => {
    const gql = new CombinedError({ graphQLErrors: [{ message: 'no', extensions: { code: 'FORBIDDEN' } }] });
    expect(describe(gql).code).toBe('FORBIDDEN');
    expect(describe(new CombinedError({ networkError: new Error('Failed to fetch') })).code).toBe('NETWORK');
    expect(describe([{ message: 'x', extensions: { code: 'SOMETHING_NEW' } }]).code).toBe('INTERNAL');
  });
});

group('validation (R-AUTH-1, R-TASK-2)', () => {
  it('checks accounts as the gateway does', () => {
    expect(validateAccount({ username: 'popug_1', password: 'beakbeak', fullName: 'Popug', email: 'p@uberpopug.com' })).toEqual({});
    expect(Object.keys(validateAccount({ username: 'Po', password: 'short', fullName: ' ', email: 'nope' })).sort()).toEqual([
      'email',
      'fullName',
      'password',
      'username',
    ]);
  });

  it('checks tasks as the gateway does', () => {
    expect(validateTask({ title: 'Fix the beak scanner', jiraId: 'UBERPOP-42', description: 'It scans tails.' })).toEqual({});
    expect(validateTask({ title: '[UBERPOP-42] Fix', jiraId: '', description: 'x' })).toEqual({ title: 'validation.titleBrackets' });
    expect(validateTask({ title: 'Fix', jiraId: 'uberpop-42', description: '' })).toEqual({
      jiraId: 'validation.jiraId',
      description: 'validation.description',
    });
  });
});
