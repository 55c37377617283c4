import { createHash } from 'node:crypto';

/*
 * Every Redis name the session layer uses, in one place, so that a change of
 * shape (or of the Cluster hash tag that keeps scripts on one slot) is made
 * once and cannot leave a reader and a writer disagreeing. A key shape here is
 * part of the deployed contract: sessions and locks written by a running
 * version must still be found by the next one.
 */

/** Prefix of every key the gateway writes, so that it can share a Redis with other applications. */
export const REDIS_NAMESPACE = 'bff:';

/** Prefix of session records: a record's Redis key is this + `sessionRecordId(storeId)` (the shape connect-redis wrote them under, kept so that they are still found). */
export const SESSION_RECORD_PREFIX = `${REDIS_NAMESPACE}sess:`;

/** Pub/sub channel that tells every instance a session changed (a channel, not a key: no hash tag). */
export const SESSION_INVALIDATION_CHANNEL = `${REDIS_NAMESPACE}session-invalidate`;

/**
 * The Redis Cluster hash tag of one session: every key below that carries it
 * lives on the session record's slot, so one script can check the refresh
 * lock and write the record atomically.
 */
const hashTag = (storeId: string): string => `{${storeId}}`;

/**
 * The record's id in the session record store (Redis adds
 * `SESSION_RECORD_PREFIX`). Also the associated data of the record's
 * encryption: a new shape would make every live session undecryptable.
 */
export const sessionRecordId = (storeId: string): string => hashTag(storeId);

/*
 * The keys below are KeyValueStore keys: the store adds `REDIS_NAMESPACE`.
 */

/** The lock instances take to refresh one session's tokens once between them. */
export const refreshLockKey = (storeId: string): string => `lock:${hashTag(storeId)}`;

/** The marker a failed refresh leaves, so that a failing IdP is not asked again for that session during the back-off. */
export const refreshBackoffKey = (storeId: string): string => `refresh-backoff:${hashTag(storeId)}`;

/** An entry of the sid → sessions or sub → sessions index; hashed so that no user identifier is in clear in Redis. */
export const sessionIndexKey = (kind: 'sub' | 'sid', issuer: string, value: string): string => `idx:${kind}:${createHash('sha256').update(`${issuer}\n${value}`).digest('base64url')}`;

/** A login in flight: its id has the shape of a session id, and the store id half names it. */
export const loginTransactionKey = (storeId: string): string => `tx:${storeId}`;
