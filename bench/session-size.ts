/**
 * Bytes per session in Redis, measured on what the gateway's own code writes:
 * the store factory the gateway uses (SessionRepository over its Redis record
 * store) and its sid/sub index, fed with session data of realistic size: RS256
 * JWT access and ID tokens of about 1.1 KB, a JWT refresh token, and the
 * claims a login keeps (src/oidc/session-claims.ts, from the ID token as a
 * Keycloak-like provider issues it). Logging 1,000 users in through the test
 * IdP would be slow, and its opaque 43-character access tokens are far smaller
 * than the RS256 JWTs real providers issue.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { SessionData } from 'express-session';
import { createClient } from '@redis/client';
import { loadConfig } from '../src/config/load.ts';
import { sessionClaims } from '../src/oidc/session-claims.ts';
import { createLogger } from '../src/ops/logger.ts';
import { newHandle, parseHandle } from '../src/session/handles.ts';
import { SessionIndex } from '../src/session/session-index.ts';
import { createStores } from '../src/session/stores.ts';
import type { UserSession } from '../src/session/types.ts';
import { median } from './load.ts';

const ISSUER = 'https://login.example.com/realms/customers';
const PUBLIC_URL = 'https://app.example.com';
const FIRST_NAMES = ['Anna', 'Ben', 'Chiara', 'Dmitri', 'Elisabeth', 'Farouk', 'Grace', 'Hiroshi', 'Ines', 'Jean-Baptiste', 'Kwame', 'Li'];
const LAST_NAMES = ['Ng', 'Meyer', 'Okonkwo', 'Rossi', 'Van der Berg', 'Nakamura', 'Fernández García', 'Kowalski', 'Smith', 'Østergaard'];

export interface SessionSizeResult {
  sessions: number;
  /** Median MEMORY USAGE of one session record (the allocator rounds it up to a size class). */
  recordBytes: number;
  /** Median length of the record's value (STRLEN): what the allocator's rounding hides. */
  valueBytes: number;
  /** Median of the record plus its share of the sid and sub index sets. */
  totalBytes: number;
  /** Median token lengths (characters) that went into each session. */
  accessTokenChars: number;
  idTokenChars: number;
  refreshTokenChars: number;
}

export async function measureSessionSize(redisUrl: string, count: number): Promise<SessionSizeResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bff-bench-size-'));
  const routesFile = join(dir, 'routes.json');
  writeFileSync(routesFile, JSON.stringify({ routes: [] }));
  const config = loadConfig(
    {
      BFF_PUBLIC_URL: PUBLIC_URL,
      BFF_ISSUER_URL: ISSUER,
      BFF_CLIENT_ID: 'bff',
      BFF_CLIENT_SECRET: randomBytes(32).toString('base64url'),
      BFF_SESSION_SECRETS: randomBytes(48).toString('base64url'),
      BFF_REDIS_URL: redisUrl,
      BFF_ROUTES_FILE: routesFile,
    },
    dir,
  );
  const stores = createStores(config, createLogger('silent'));
  const raw = rawClient(redisUrl);
  const lengths = { access: [] as number[], id: [] as number[], refresh: [] as number[] };
  try {
    await raw.connect();
    await waitForStore(() => stores.kv.ping());
    const index = new SessionIndex(stores.kv);
    for (let i = 0; i < count; i++) {
      const sid = newHandle();
      const storeId = parseHandle(sid)?.storeId as string;
      const user = realisticUser(config.sessionAbsoluteTimeoutSec);
      lengths.access.push(user.accessToken.length);
      lengths.id.push(user.idToken?.length ?? 0);
      lengths.refresh.push(user.refreshToken?.length ?? 0);
      // What express-session hands the store at login: its Cookie, serialised, next to the user (the record leaves the cookie out).
      const cookie = {
        originalMaxAge: config.sessionAbsoluteTimeoutSec * 1000,
        expires: new Date(Date.now() + config.sessionAbsoluteTimeoutSec * 1000).toISOString(),
        secure: true,
        httpOnly: true,
        path: '/',
        sameSite: 'strict',
      };
      await stores.sessions.save(sid, { cookie, user } as unknown as SessionData);
      // What the login callback adds, so that back-channel logout finds the session.
      await index.add(storeId, { issuer: ISSUER, sub: user.sub, ...(user.idpSid ? { sid: user.idpSid } : {}) }, user.absoluteExpiresAt - Date.now());
    }
    return { sessions: count, ...(await attributeBytes(raw)), accessTokenChars: median(lengths.access), idTokenChars: median(lengths.id), refreshTokenChars: median(lengths.refresh) };
  } finally {
    if (raw.isOpen) await raw.close();
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function rawClient(url: string) {
  return createClient({ url });
}
type RawClient = ReturnType<typeof rawClient>;

/**
 * Charges every key to the sessions it belongs to: a record by the store id in
 * its hash tag, an index set in equal shares to its members. Needs a Redis that
 * holds nothing else.
 */
async function attributeBytes(raw: RawClient): Promise<{ recordBytes: number; valueBytes: number; totalBytes: number }> {
  const records = new Map<string, number>();
  const values: number[] = [];
  const indexShare = new Map<string, number>();
  for await (const keys of raw.scanIterator({ COUNT: 500 })) {
    for (const key of keys) {
      const bytes = (await raw.memoryUsage(key, { SAMPLES: 0 })) ?? 0;
      const type = await raw.type(key);
      const tagged = /\{([A-Za-z0-9_-]{22})\}/.exec(key);
      if (type === 'string' && tagged?.[1]) {
        records.set(tagged[1], bytes);
        values.push(await raw.strLen(key));
      } else if (type === 'set') {
        const members = await raw.sMembers(key);
        for (const member of members) indexShare.set(member, (indexShare.get(member) ?? 0) + bytes / members.length);
      } else {
        throw new Error(`unexpected key in the session-size Redis: ${key} (${type})`);
      }
    }
  }
  if (records.size === 0) throw new Error('no session records found in Redis');
  return {
    recordBytes: median([...records.values()]),
    valueBytes: median(values),
    totalBytes: median([...records].map(([storeId, bytes]) => bytes + (indexShare.get(storeId) ?? 0))),
  };
}

async function waitForStore(ping: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return await ping();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await delay(50);
    }
  }
}

/** A signed-in user as a Keycloak-like provider leaves them: RS256 access and ID tokens, a JWT refresh token. */
function realisticUser(absoluteTimeoutSec: number): UserSession {
  const now = Date.now();
  const iat = Math.floor(now / 1000);
  const sub = randomUUID();
  const idpSid = randomUUID();
  const given = pick(FIRST_NAMES);
  const family = pick(LAST_NAMES);
  const username = `${given}.${family}`.toLowerCase().replace(/[^a-z.]/g, '');
  const email = `${username}${Math.floor(Math.random() * 1000)}@example.com`;
  const profile = { email_verified: true, name: `${given} ${family}`, preferred_username: username, given_name: given, family_name: family, email };
  const scope = 'openid profile email offline_access orders:read orders:write';
  const accessToken = jwt(
    { alg: 'RS256', typ: 'JWT', kid: randomBytes(32).toString('base64url') },
    {
      exp: iat + 300,
      iat,
      jti: randomUUID(),
      iss: ISSUER,
      aud: ['orders-api', 'account'],
      sub,
      typ: 'Bearer',
      azp: 'bff',
      sid: idpSid,
      realm_access: { roles: ['offline_access', 'customer'] },
      scope,
      email_verified: true,
      preferred_username: username,
      email,
    },
    256,
  );
  const idTokenPayload = {
    exp: iat + 300,
    iat,
    auth_time: iat,
    jti: randomUUID(),
    iss: ISSUER,
    aud: 'bff',
    typ: 'ID',
    nonce: randomBytes(32).toString('base64url'),
    at_hash: randomBytes(16).toString('base64url'),
    sub,
    sid: idpSid,
    acr: '1',
    ...profile,
    locale: 'en',
  };
  const idToken = jwt({ alg: 'RS256', typ: 'JWT', kid: randomBytes(32).toString('base64url') }, idTokenPayload, 256);
  const refreshToken = jwt(
    { alg: 'HS512', typ: 'JWT', kid: randomUUID() },
    { exp: iat + 1800, iat, jti: randomUUID(), iss: ISSUER, aud: ISSUER, sub, typ: 'Refresh', azp: 'bff', sid: idpSid, scope },
    64,
  );
  return {
    sub,
    // What the login keeps; Keycloak's userinfo repeats the ID token's profile claims, so it adds nothing.
    claims: sessionClaims(idTokenPayload, { sub, ...profile }),
    accessToken,
    accessTokenExpiresAt: now + 300_000,
    accessTokenIssuedAt: now,
    refreshToken,
    idToken,
    tokenType: 'Bearer',
    scope,
    createdAt: now,
    absoluteExpiresAt: now + absoluteTimeoutSec * 1000,
    logoutNonce: randomBytes(16).toString('base64url'),
    idpSid,
    acr: '1',
    authTime: iat,
  };
}

/** A JWT of the right shape and size; the signature is random bytes of the algorithm's length (nothing verifies it here). */
function jwt(header: object, payload: object, signatureBytes: number): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(payload)}.${randomBytes(signatureBytes).toString('base64url')}`;
}

function pick<T>(values: readonly T[]): T {
  return values[Math.floor(Math.random() * values.length)] as T;
}
