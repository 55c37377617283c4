import { describe, expect, test } from '@jest/globals';
import type { ClaimRule, RouteRequirement } from '../../src/config/types.ts';
import { StepUpAllowList } from '../../src/policy/allow-list.ts';
import { claimRuleHolds, requirementFailure } from '../../src/policy/claims.ts';
import { stepUpLoginUrl, stepUpShortfall } from '../../src/policy/step-up.ts';
import { authTimeFault, acrFault } from '../../src/oidc/step-up-checks.ts';
import { refererReturnTo } from '../../src/proxy/route-policy.ts';

describe('claim rules', () => {
  test.each<[string, unknown, ClaimRule, boolean]>([
    ['a scalar string equals', 'eng', 'eng', true],
    ['a scalar string differs', 'sales', 'eng', false],
    ['a scalar rule never matches an array claim (write a list to test membership)', ['eng'], 'eng', false],
    ['a number equals', 3, 3, true],
    ['a number is not its string', '3', 3, false],
    ['a boolean equals', true, true, true],
    ['a boolean is not its string', 'true', true, false],
    ['false is not missing', undefined, false, false],
    ['a missing claim fails a scalar rule', undefined, 'eng', false],
    ['a missing claim fails a list rule', undefined, ['eng'], false],
    ['null fails', null, ['eng'], false],
    ['a scalar claim equal to one of the list', 'ops', ['admin', 'ops'], true],
    ['a scalar claim in none of the list', 'dev', ['admin', 'ops'], false],
    ['an array claim sharing one value', ['dev', 'ops'], ['admin', 'ops'], true],
    ['an array claim sharing none', ['dev', 'qa'], ['admin', 'ops'], false],
    ['an empty array claim', [], ['admin'], false],
    ['an array claim of numbers', [1, 2], [2, 5], true],
    ['a list of numbers does not match their strings', ['2'], [2], false],
    ['a list of booleans', true, [true], true],
    ['an object claim', { admin: true }, ['admin'], false],
    ['a nested array is not flattened', [['admin']], ['admin'], false],
  ])('%s', (_name, claim, rule, holds) => {
    expect(claimRuleHolds(claim, rule)).toBe(holds);
  });

  const requirement: RouteRequirement = { claims: { groups: ['admin', 'ops'], email_verified: true }, acr: ['urn:loa:2', 'urn:loa:3'] };

  test('a session meeting every rule passes', () => {
    expect(requirementFailure(requirement, { claims: { groups: ['ops'], email_verified: true }, acr: 'urn:loa:3' })).toBeUndefined();
  });
  test('the failing claim is named (its name only)', () => {
    expect(requirementFailure(requirement, { claims: { groups: ['ops'], email_verified: false }, acr: 'urn:loa:2' })).toEqual({ rule: 'claims', claim: 'email_verified' });
    expect(requirementFailure(requirement, { claims: { email_verified: true }, acr: 'urn:loa:2' })).toEqual({ rule: 'claims', claim: 'groups' });
  });
  test('acr must be one of the listed values, and present', () => {
    expect(requirementFailure(requirement, { claims: { groups: 'admin', email_verified: true }, acr: 'urn:loa:1' })).toEqual({ rule: 'acr' });
    expect(requirementFailure(requirement, { claims: { groups: 'admin', email_verified: true } })).toEqual({ rule: 'acr' });
  });
  test('acr in the claims does not stand in for the login acr', () => {
    expect(requirementFailure({ acr: ['urn:loa:2'] }, { claims: { acr: 'urn:loa:2' } })).toEqual({ rule: 'acr' });
  });
  test('a claim is looked up on the claims themselves, never on their prototype', () => {
    expect(requirementFailure({ claims: { constructor: ['x'] } }, { claims: {} })).toEqual({ rule: 'claims', claim: 'constructor' });
    expect(requirementFailure({ claims: { toString: 'x' } }, { claims: {} })).toEqual({ rule: 'claims', claim: 'toString' });
  });
});

describe('step-up', () => {
  const now = 1_800_000_000;
  test.each([
    ['acr met', { acr: 'urn:loa:2' }, { acr: 'urn:loa:2', authTime: now - 10_000 }, undefined],
    ['acr differs', { acr: 'urn:loa:2' }, { acr: 'urn:loa:1', authTime: now }, 'acr'],
    ['acr missing', { acr: 'urn:loa:2' }, { authTime: now }, 'acr'],
    ['recent enough', { maxAge: 300 }, { authTime: now - 300 }, undefined],
    ['one second too old', { maxAge: 300 }, { authTime: now - 301 }, 'max_age'],
    ['auth_time missing while maxAge is asked', { maxAge: 300 }, { acr: 'urn:loa:2' }, 'max_age'],
    ['maxAge 0 needs a login this very second', { maxAge: 0 }, { authTime: now - 1 }, 'max_age'],
    ['both met', { acr: 'urn:loa:2', maxAge: 60 }, { acr: 'urn:loa:2', authTime: now - 5 }, undefined],
    ['both asked, acr fails first', { acr: 'urn:loa:2', maxAge: 60 }, { acr: 'urn:loa:1', authTime: now - 500 }, 'acr'],
    ['both asked, only age fails', { acr: 'urn:loa:2', maxAge: 60 }, { acr: 'urn:loa:2', authTime: now - 500 }, 'max_age'],
  ])('%s', (_name, stepUp, auth, expected) => {
    expect(stepUpShortfall(stepUp, auth, now)).toBe(expected);
  });

  test('the login URL asks for only what the route declares', () => {
    expect(stepUpLoginUrl({ acr: 'urn:loa:2' }, '/orders?x=1')).toBe('/auth/login?acr_values=urn%3Aloa%3A2&returnTo=%2Forders%3Fx%3D1');
    expect(stepUpLoginUrl({ maxAge: 300 }, '/')).toBe('/auth/login?max_age=300&returnTo=%2F');
    expect(stepUpLoginUrl({ acr: 'a', maxAge: 0 }, '/')).toBe('/auth/login?acr_values=a&max_age=0&returnTo=%2F');
  });

  test.each([
    [undefined, '/'],
    ['http://gw.test/orders/7?tab=items', '/orders/7?tab=items'],
    ['http://gw.test/orders#frag', '/orders'],
    ['https://gw.test/orders', '/'],
    ['http://evil.test/orders', '/'],
    ['http://gw.test:8080/orders', '/'],
    ['not a url', '/'],
    ['http://gw.test/%2F%2Fevil.test', '/'],
  ])('returnTo from Referer %j → %j', (referer, expected) => {
    expect(refererReturnTo(referer, 'http://gw.test')).toBe(expected);
  });
});

describe('the step-up allow-list', () => {
  const allow = new StepUpAllowList([{ stepUp: { acr: 'urn:loa:2' } }, { stepUp: { maxAge: 300 } }, { stepUp: { acr: 'urn:loa:3', maxAge: 60 } }, {}]);

  test('collects every declared acr and maxAge', () => {
    expect([...allow.acrs]).toEqual(['urn:loa:2', 'urn:loa:3']);
    expect([...allow.maxAges]).toEqual([300, 60]);
  });
  test.each<[string, unknown, unknown, unknown]>([
    ['nothing asked', undefined, undefined, { stepUp: {} }],
    ['a declared acr', 'urn:loa:2', undefined, { stepUp: { acr: 'urn:loa:2' } }],
    ['a declared maxAge', undefined, '300', { stepUp: { maxAge: 300 } }],
    ['both, declared by different routes', 'urn:loa:3', '300', { stepUp: { acr: 'urn:loa:3', maxAge: 300 } }],
    ['an undeclared acr', 'urn:loa:9', undefined, { undeclared: 'acr_values' }],
    ['two acr values at once', 'urn:loa:2 urn:loa:3', undefined, { undeclared: 'acr_values' }],
    ['an empty acr', '', undefined, { undeclared: 'acr_values' }],
    ['a repeated acr parameter', ['urn:loa:2', 'urn:loa:2'], undefined, { undeclared: 'acr_values' }],
    ['an undeclared maxAge', undefined, '301', { undeclared: 'max_age' }],
    ['a maxAge with a sign', undefined, '+300', { undeclared: 'max_age' }],
    ['a maxAge with a fraction', undefined, '300.0', { undeclared: 'max_age' }],
    ['an empty maxAge', undefined, '', { undeclared: 'max_age' }],
    ['a declared acr with an undeclared maxAge', 'urn:loa:2', '5', { undeclared: 'max_age' }],
  ])('login: %s', (_name, acr, maxAge, expected) => {
    expect(allow.loginRequest(acr, maxAge)).toEqual(expected);
  });
  test.each<[string, string | undefined, string | undefined, unknown]>([
    ['a declared acr', 'urn:loa:2', undefined, { acr: 'urn:loa:2' }],
    ['the first declared value of a list', 'urn:loa:9 urn:loa:3 urn:loa:2', undefined, { acr: 'urn:loa:3' }],
    ['a declared max_age', undefined, '60', { maxAge: 60 }],
    ['both', 'urn:loa:2', '300', { acr: 'urn:loa:2', maxAge: 300 }],
    ['no declared acr', 'urn:loa:9', undefined, undefined],
    ['an undeclared max_age', 'urn:loa:2', '61', undefined],
    ['nothing asked', undefined, undefined, undefined],
  ])('upstream challenge: %s', (_name, acr, maxAge, expected) => {
    expect(allow.challenge(acr, maxAge)).toEqual(expected);
  });
});

describe('what a step-up login got', () => {
  test('acr must equal what was asked, when asked', () => {
    expect(acrFault(undefined, 'anything')).toBeUndefined();
    expect(acrFault('urn:loa:2', 'urn:loa:2')).toBeUndefined();
    expect(acrFault('urn:loa:2', 'urn:loa:1')).toBe('acr_mismatch');
    expect(acrFault('urn:loa:2', undefined)).toBe('acr_mismatch');
  });
  test("openid-client's auth_time refusals are named; other failures are not", () => {
    const wrapped = (cause: unknown): Error => new Error('outer', { cause: new Error('inner', { cause }) });
    expect(authTimeFault(wrapped({ claims: { sub: 'a' } }), 300)).toBe('auth_time_missing');
    expect(authTimeFault(wrapped({ claims: { sub: 'a', auth_time: 1 }, claim: 'auth_time' }), 300)).toBe('auth_time_too_old');
    expect(authTimeFault(wrapped({ claims: { sub: 'a', auth_time: 1 }, claim: 'exp' }), 300)).toBeUndefined();
    expect(authTimeFault(wrapped({ claims: { sub: 'a' } }), undefined)).toBeUndefined();
    expect(authTimeFault(new Error('fetch failed'), 300)).toBeUndefined();
  });
});
