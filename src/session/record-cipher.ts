import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scryptSync } from 'node:crypto';

const VERSION = 'v1';
/**
 * First byte of a binary record: `v1` text envelopes start with `v`, and the
 * JSON that connect-redis stored sessions in starts with `{`.
 */
export const BINARY_VERSION = 0x02;
// The HKDF info of every record ever written: changing it would make them all undecryptable.
const INFO = Buffer.from('bff-gateway session encryption v1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_BYTES = 6;
/** Version byte and key id: authenticated as associated data, ahead of the store key. */
const HEADER_BYTES = 1 + KEY_ID_BYTES;

interface SessionSecret {
  /** Public name of the secret written into each ciphertext: a hash prefix, never the secret. */
  id: string;
  /** The same name as bytes, in binary records. */
  idBytes: Buffer;
  material: Buffer;
}

/**
 * AES-256-GCM encryption of the records a handle names (sessions as binary
 * records, login transactions as `v1` text envelopes) under a key derived (HKDF-SHA256) from the active server
 * secret and the handle's record key, a per-record secret that only the
 * browser's cookie holds: a store dump without cookies decrypts nothing, and a
 * cookie without the server secret decrypts nothing either.
 */
export class RecordCipher {
  private readonly secrets: readonly SessionSecret[];

  constructor(serverSecrets: readonly string[]) {
    if (serverSecrets.length === 0) throw new Error('RecordCipher needs at least one secret');
    this.secrets = serverSecrets.map((s) => {
      const idBytes = keyId(s);
      return { id: idBytes.toString('base64url'), idBytes, material: Buffer.from(s, 'utf8') };
    });
  }

  /**
   * The binary record (session records): version byte, key id, IV,
   * ciphertext and tag, 35 bytes around the plaintext where the text
   * envelope's base64 adds a third. The header is authenticated along with
   * `aad` (the storage key): neither can be changed without failing the tag.
   */
  encryptBytes(plaintext: Uint8Array, recordKey: Buffer, aad: string): Buffer {
    const secret = this.secrets[0] as SessionSecret;
    const header = Buffer.concat([Buffer.of(BINARY_VERSION), secret.idBytes]);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key(secret, recordKey), iv);
    cipher.setAAD(Buffer.concat([header, Buffer.from(aad)]));
    return Buffer.concat([header, iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  }

  /** Undefined for anything that does not decrypt: too short, another version, unknown key, tampering, wrong record key or store key. */
  decryptBytes(record: Uint8Array, recordKey: Buffer, aad: string): Buffer | undefined {
    if (record.length < HEADER_BYTES + IV_BYTES + TAG_BYTES || record[0] !== BINARY_VERSION) return undefined;
    const bytes = Buffer.from(record.buffer, record.byteOffset, record.length);
    const header = bytes.subarray(0, HEADER_BYTES);
    const secret = this.secrets.find((s) => s.idBytes.equals(header.subarray(1)));
    if (!secret) return undefined;
    const iv = bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
    const body = bytes.subarray(HEADER_BYTES + IV_BYTES, bytes.length - TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key(secret, recordKey), iv);
      decipher.setAAD(Buffer.concat([header, Buffer.from(aad)]));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body), decipher.final()]);
    } catch {
      return undefined;
    }
  }

  /** True when the binary record was written under a secret other than the active one (or is no binary record). */
  isStaleBytes(record: Uint8Array): boolean {
    const active = (this.secrets[0] as SessionSecret).idBytes;
    return record[0] !== BINARY_VERSION || !active.equals(record.subarray(1, HEADER_BYTES));
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
function keyId(secret: string): Buffer {
  return scryptSync(secret, 'bff-gateway session key id', KEY_ID_BYTES, { N: 1 << 14, r: 8, p: 1 });
}
