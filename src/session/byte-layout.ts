/**
 * The length-prefixed pieces a session record's plaintext is made of. Every
 * read is bounds-checked: a record that is cut short or claims more bytes
 * than it has is a RecordFormatError, never a read past its end.
 */

/** A record that decrypted (so it is ours) but does not parse as the format says: a bug or a version this code does not know. */
export class RecordFormatError extends Error {
  readonly code = 'session_record_malformed';
  constructor(what: string) {
    super(`session record malformed: ${what}; the session is treated as absent (the user signs in again)`);
  }
}

export function u8(value: number): Buffer {
  return Buffer.of(value);
}

export function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

/** `bytes` preceded by its length. */
export function sized(bytes: Buffer): Buffer[] {
  return [u32(bytes.length), bytes];
}

export class ByteReader {
  private readonly bytes: Buffer;
  private offset = 0;

  constructor(bytes: Buffer) {
    this.bytes = bytes;
  }

  u8(): number {
    return this.take(1)[0] as number;
  }

  u32(): number {
    return this.take(4).readUInt32BE(0);
  }

  /** The next length-prefixed piece. */
  sized(): Buffer {
    return this.take(this.u32());
  }

  /** Everything not read yet. */
  rest(): Buffer {
    const rest = this.bytes.subarray(this.offset);
    this.offset = this.bytes.length;
    return rest;
  }

  private take(length: number): Buffer {
    if (length > this.bytes.length - this.offset) throw new RecordFormatError(`${length} bytes wanted at offset ${this.offset}, ${this.bytes.length - this.offset} left`);
    const piece = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return piece;
  }
}
