import { ByteReader, RecordFormatError, sized, u8 } from './byte-layout.ts';

/*
 * A token in a session record. JWTs (and opaque tokens that are base64url,
 * as many are) are text that encodes bytes: four characters for every three
 * bytes. Kept as the bytes their dot-separated segments decode to, an RS256
 * access token of 1.1 KB takes a quarter less room. Only when decoding is
 * exact: each segment must be canonical unpadded base64url, so that encoding
 * the bytes again gives back the very string the IdP issued (an upstream or
 * the IdP may compare it byte for byte, and a signature covers it). Anything
 * else is kept as its UTF-8 text.
 */

const ABSENT = 0;
const TEXT = 1;
const SEGMENTS = 2;
const MAX_SEGMENTS = 255;

/** The token's bytes in a record: a kind byte, then the text or each segment's bytes, length-prefixed. */
export function packToken(token: string | undefined): Buffer[] {
  if (token === undefined) return [u8(ABSENT)];
  const text = [u8(TEXT), ...sized(Buffer.from(token, 'utf8'))];
  const segments = decodedSegments(token);
  if (!segments) return text;
  const packed = [u8(SEGMENTS), u8(segments.length), ...segments.flatMap(sized)];
  // A short token can cost more as segments (four length bytes each) than as text.
  return byteLength(packed) < byteLength(text) ? packed : text;
}

/** The token packToken wrote at the reader's position. */
export function unpackToken(reader: ByteReader): string | undefined {
  const kind = reader.u8();
  if (kind === ABSENT) return undefined;
  if (kind === TEXT) return reader.sized().toString('utf8');
  if (kind !== SEGMENTS) throw new RecordFormatError(`unknown token kind ${kind}`);
  const count = reader.u8();
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(reader.sized().toString('base64url'));
  return parts.join('.');
}

/** Each segment's bytes, or undefined when any segment would not encode back to exactly itself. */
function decodedSegments(token: string): Buffer[] | undefined {
  const parts = token.split('.');
  if (parts.length > MAX_SEGMENTS) return undefined;
  const segments: Buffer[] = [];
  for (const part of parts) {
    // Buffer's decoder skips characters outside the alphabet and accepts padding: only the re-encoding tells.
    const bytes = Buffer.from(part, 'base64url');
    if (bytes.toString('base64url') !== part) return undefined;
    segments.push(bytes);
  }
  return segments;
}

function byteLength(chunks: Buffer[]): number {
  return chunks.reduce((sum, chunk) => sum + chunk.length, 0);
}
