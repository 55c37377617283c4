import type { Request, Response } from 'express';
import type { GatewayConfig } from '../config/types.ts';
import type { LoginChecks } from '../oidc/login-types.ts';
import type { RecordCipher } from '../session/record-cipher.ts';
import { newHandle, parseHandle } from '../session/handles.ts';
import { loginTransactionKey } from '../session/keys.ts';
import type { KeyValueStore } from '../store/kv.ts';
import { readCookie, transactionCookieAttributes } from '../http/cookies.ts';

export const LOGIN_TRANSACTION_TTL_MS = 10 * 60 * 1000;

export interface LoginTransaction extends LoginChecks {
  returnTo: string;
  prompt?: string;
}

/**
 * A login in flight, between `/auth/login` and `/auth/callback`. It is kept
 * server-side (encrypted, single use, 10 minutes) and bound to the browser by
 * its own short-lived SameSite=Lax cookie: the session cookie stays Strict,
 * yet the transaction survives the cross-site return from the IdP.
 */
export class LoginTransactions {
  private readonly config: GatewayConfig;
  private readonly kv: KeyValueStore;
  private readonly cipher: RecordCipher;

  constructor(config: GatewayConfig, kv: KeyValueStore, cipher: RecordCipher) {
    this.config = config;
    this.kv = kv;
    this.cipher = cipher;
  }

  /**
   * Starts a transaction and binds it to this browser. A transaction the
   * browser already holds is deleted, so one browser holds at most one: a
   * script that keeps its cookies cannot fill the store, and one that drops
   * them is bounded by the per-address rate limit on /auth/login.
   */
  async begin(req: Request, res: Response, tx: LoginTransaction): Promise<void> {
    const previous = this.storeKeyOf(readCookie(req, this.config.txCookieName));
    const id = newHandle();
    const { storeId, recordKey } = parseHandle(id) as { storeId: string; recordKey: Buffer };
    const key = loginTransactionKey(storeId);
    await Promise.all([this.kv.set(key, this.cipher.encrypt(JSON.stringify(tx), recordKey, key), LOGIN_TRANSACTION_TTL_MS), ...(previous ? [this.kv.delete(previous)] : [])]);
    res.cookie(this.config.txCookieName, id, { ...transactionCookieAttributes(this.config), maxAge: LOGIN_TRANSACTION_TTL_MS });
  }

  /**
   * Returns the transaction this browser started and deletes it, so that a
   * state can be used once. Undefined when there is none (no cookie, expired,
   * already used, or not this browser's).
   */
  async take(req: Request, res: Response): Promise<{ found: false; reason: 'no_cookie' | 'unknown' } | { found: true; tx: LoginTransaction }> {
    const id = readCookie(req, this.config.txCookieName);
    // Whatever happens next, this browser's transaction cookie is spent.
    if (id !== undefined) res.clearCookie(this.config.txCookieName, transactionCookieAttributes(this.config));
    const parts = id === undefined ? undefined : parseHandle(id);
    if (!parts) return { found: false, reason: id === undefined ? 'no_cookie' : 'unknown' };
    const key = loginTransactionKey(parts.storeId);
    const stored = await this.kv.take(key);
    const plaintext = stored === undefined ? undefined : this.cipher.decrypt(stored, parts.recordKey, key);
    if (plaintext === undefined) return { found: false, reason: 'unknown' };
    return { found: true, tx: JSON.parse(plaintext) as LoginTransaction };
  }

  /** The store key of the transaction a cookie value names; undefined for a malformed value. */
  private storeKeyOf(cookieValue: string | undefined): string | undefined {
    const parts = cookieValue === undefined ? undefined : parseHandle(cookieValue);
    return parts ? loginTransactionKey(parts.storeId) : undefined;
  }
}
