// Everything this app knows about signing in. There is no OAuth library and no token here:
// the gateway runs OpenID Connect on the server and keeps the tokens; the browser holds one
// HttpOnly session cookie that this code never sees.

/** What GET /auth/user answers for a signed-in user (never a token). */
export type User = {
  sub: string
  claims: Record<string, unknown>
  session: { expiresIn: number; idleExpiresIn: number }
  logoutUrl: string
}

/** The signed-in user, or null without a session (the gateway answers 401). */
export async function getUser(signal?: AbortSignal): Promise<User | null> {
  const response = await fetch('/auth/user', { credentials: 'same-origin', signal })
  if (response.status === 401) return null
  if (!response.ok) throw new Error(`GET /auth/user answered HTTP ${response.status}`)
  return (await response.json()) as User
}

/** Where "Sign in" goes: a navigation to the gateway, which comes back to `returnTo` (a path on this site). */
export function loginUrl(returnTo: string): string {
  return `/auth/login?returnTo=${encodeURIComponent(returnTo)}`
}

/**
 * fetch() for the gateway's /api routes (and its state-changing /auth endpoints): the session
 * cookie goes along, and so does the CSRF header the gateway requires. A page on another site
 * cannot send that header without a CORS preflight, which the gateway never grants.
 */
export function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  headers.set('x-csrf', '1')
  return fetch(path, { ...init, headers, credentials: 'same-origin' })
}

/** Ends the session at the gateway, then goes to the IdP's end-session page, which returns here. */
export async function logout(): Promise<void> {
  const response = await apiFetch('/auth/logout', { method: 'POST' })
  if (!response.ok) throw new Error(`POST /auth/logout answered HTTP ${response.status}`)
  const { redirectUrl } = (await response.json()) as { redirectUrl: string }
  window.location.assign(redirectUrl)
}
