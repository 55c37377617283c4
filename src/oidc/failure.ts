import { classifyIdpError } from './classify.ts';
import { isIdpError, type IdpEndpoint } from './errors.ts';
import { StepUpNotSatisfiedError } from './step-up-checks.ts';

/** Runs a request to the IdP; whatever it throws becomes one of the gateway's IdP errors. */
export async function asIdpFailure<T>(endpoint: IdpEndpoint, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    // Not the IdP's failure: the login got an answer that is valid, just not the one asked for.
    if (err instanceof StepUpNotSatisfiedError) throw err;
    throw await classifyIdpError(err, endpoint);
  }
}

/** A log-safe description of an IdP failure: error names and codes only, never response bodies, descriptions or tokens. */
export function describe(err: unknown): string {
  if (isIdpError(err)) return err.status === undefined ? err.reason : `${err.reason} (HTTP ${err.status})`;
  if (err instanceof Error) {
    const code = 'code' in err && typeof err.code === 'string' ? err.code : err.name;
    const cause = err.cause instanceof Error && 'code' in err.cause ? ` (${String(err.cause.code)})` : '';
    return `${code}${cause}`;
  }
  return 'unknown error';
}
