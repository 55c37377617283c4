/** One challenge of a `WWW-Authenticate` field (RFC 9110 §11.6.1): its scheme, and its auth-params or token68. */
export interface Challenge {
  /** Lower case: schemes are case-insensitive. */
  scheme: string;
  /** Names lower case; values unquoted and unescaped. A name given twice keeps its first value. */
  params: Record<string, string>;
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[-._~+/0-9A-Za-z]/;
const OWS = /[ \t]/;

/**
 * Parses every challenge of a `WWW-Authenticate` value (or of several field
 * lines). Challenges and their parameters are both comma-separated, so a
 * comma inside a quoted string must not split anything, and a name that is
 * not followed by `=` starts the next challenge. Whatever cannot be parsed
 * ends the parse: the challenges read so far are returned, nothing is guessed.
 */
export function parseChallenges(field: string | readonly string[]): Challenge[] {
  const text = typeof field === 'string' ? field : field.join(', ');
  const challenges: Challenge[] = [];
  let pos = 0;
  let current: Challenge | undefined;

  const skip = (chars: RegExp): number => {
    const start = pos;
    while (pos < text.length && chars.test(text.charAt(pos))) pos++;
    return pos - start;
  };
  const read = (chars: RegExp): string => {
    const start = pos;
    skip(chars);
    return text.slice(start, pos);
  };

  /** A quoted-string at `pos`, unescaped; undefined when it never ends. */
  const readQuoted = (): string | undefined => {
    let value = '';
    for (pos++; pos < text.length; pos++) {
      const c = text.charAt(pos);
      if (c === '"') {
        pos++;
        return value;
      }
      if (c === '\\' && pos + 1 < text.length) pos++;
      value += text.charAt(pos);
    }
    return undefined;
  };

  /** A token68 right after a scheme: its characters, `=` padding, then the end of the field or a comma. */
  const readToken68 = (): string | undefined => {
    const start = pos;
    const token = read(TOKEN68_CHAR);
    const padding = read(/=/);
    skip(OWS);
    if (token !== '' && (pos >= text.length || text.charAt(pos) === ',')) return token + padding;
    pos = start;
    return undefined;
  };

  while (pos < text.length) {
    skip(/[ \t,]/);
    if (pos >= text.length) break;
    const name = read(TCHAR);
    if (name === '') break;
    const spaces = skip(OWS);
    if (current !== undefined && text.charAt(pos) === '=') {
      // token BWS "=" BWS ( token / quoted-string )
      pos++;
      skip(OWS);
      const value = text.charAt(pos) === '"' ? readQuoted() : read(TCHAR);
      if (value === undefined) break;
      const key = name.toLowerCase();
      if (!Object.hasOwn(current.params, key)) current.params[key] = value;
      continue;
    }
    // auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    // No prototype: a parameter named __proto__ is just a name.
    current = { scheme: name.toLowerCase(), params: Object.create(null) as Record<string, string> };
    challenges.push(current);
    if (spaces > 0) {
      const token68 = readToken68();
      if (token68 !== undefined) current.token68 = token68;
    }
  }
  return challenges;
}

/** RFC 9470: what a `Bearer error="insufficient_user_authentication"` challenge asks for, or undefined when there is none. */
export function insufficientUserAuthentication(field: string | readonly string[]): { acrValues?: string; maxAge?: string } | undefined {
  const challenge = parseChallenges(field).find((c) => c.scheme === 'bearer' && c.params.error === 'insufficient_user_authentication');
  if (challenge === undefined) return undefined;
  const { acr_values: acrValues, max_age: maxAge } = challenge.params;
  return { ...(acrValues !== undefined ? { acrValues } : {}), ...(maxAge !== undefined ? { maxAge } : {}) };
}
