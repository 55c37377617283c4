import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scryptSync } from 'node:crypto';

const VERSION = 'v1';
// The HKDF info of every record ever written: changing it would make them all undecryptable.
const INFO = Buffer.from('bff-gateway session encryption v1');
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface SessionSecret {
  /** Public name of the secret written into each ciphertext: a hash prefix, never the secret. */
  id: string;
  material: Buffer;
}

/**
 * AES-256-GCM encryption of the records a handle names (sessions and login
 * transactions) under a key derived (HKDF-SHA256) from the active server
 * secret and the handle's record key, a per-record secret that only the
 * browser's cookie holds: a store dump without cookies decrypts nothing, and a
 * cookie without the server secret decrypts nothing either.
 */
export class RecordCipher {
  private readonly secrets: readonly SessionSecret[];

  constructor(serverSecrets: readonly string[]) {
    if (serverSecrets.length === 0) throw new Error('RecordCipher needs at least one secret');
    this.secrets = serverSecrets.map((s) => ({ id: keyId(s), material: Buffer.from(s, 'utf8') }));
  }

  /** `aad` binds the ciphertext to its storage key, so one session's blob cannot be replayed as another's. */
  encrypt(plaintext: string, recordKey: Buffer, aad: string): string {
    const secret = this.secrets[0] as SessionSecret;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key(secret, recordKey), iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${secret.id}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** Undefined for anything that does not decrypt: unknown key, tampering, wrong record key. */
  decrypt(envelope: string, recordKey: Buffer, aad: string): string | undefined {
    const parts = envelope.split('.');
    if (parts.length !== 4 || parts[0] !== VERSION) return undefined;
    const secret = this.secrets.find((s) => s.id === parts[1]);
    if (!secret) return undefined;
    const iv = Buffer.from(parts[2] as string, 'base64url');
    const body = Buffer.from(parts[3] as string, 'base64url');
    if (iv.length !== IV_BYTES || body.length < TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key(secret, recordKey), iv);
      decipher.setAAD(Buffer.from(aad));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }

  /** True when the envelope was written under a secret other than the active one. */
  isStale(envelope: string): boolean {
    return !envelope.startsWith(`${VERSION}.${(this.secrets[0] as SessionSecret).id}.`);
  }

  private key(secret: SessionSecret, recordKey: Buffer): Buffer {
    return Buffer.from(hkdfSync('sha256', secret.material, recordKey, INFO, 32));
  }
}

/**
 * The key's public name in every envelope. Derived with scrypt, not a plain
 * hash: a store dump must not make it cheap to test guesses of a weak secret.
 * Computed once per secret at start-up.
 */
function keyId(secret: string): string {
  return scryptSync(secret, 'bff-gateway session key id', 6, { N: 1 << 14, r: 8, p: 1 }).toString('base64url');
}
