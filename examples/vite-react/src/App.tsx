import { useEffect, useState } from 'react'
import { apiFetch, getUser, loginUrl, logout, type User } from './api.ts'

type ApiAnswer = { status: number; body: string }

export function App() {
  // undefined: still asking the gateway; null: not signed in.
  const [user, setUser] = useState<User | null | undefined>(undefined)
  const [answer, setAnswer] = useState<ApiAnswer | null>(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    const controller = new AbortController()
    getUser(controller.signal).then(setUser, (err: unknown) => {
      if (!controller.signal.aborted) setError(String(err))
    })
    return () => controller.abort()
  }, [])

  async function callApi() {
    setBusy(true)
    setError(null)
    try {
      const response = await apiFetch('/api/echo/hello')
      setAnswer({ status: response.status, body: pretty(await response.text()) })
      // The session ended elsewhere (timeout, logout in another tab, at the IdP).
      if (response.status === 401) setUser(null)
    } catch (err) {
      setError(String(err))
    } finally {
      setBusy(false)
    }
  }

  async function signOut() {
    setBusy(true)
    try {
      await logout()
    } catch (err) {
      setError(String(err))
      setBusy(false)
    }
  }

  return (
    <main>
      <h1>Vite + React behind bff-gateway</h1>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {user === undefined && <p id="status">Checking the session…</p>}
      {user === null && (
        <>
          <p id="status">Not signed in.</p>
          <a id="login" className="button" href={loginUrl(location.pathname + location.search)}>
            Sign in
          </a>
        </>
      )}
      {user && (
        <>
          <p id="status">
            Signed in as <strong id="user-name">{displayName(user)}</strong>
          </p>
          <div className="actions">
            <button type="button" id="call-api" onClick={callApi} disabled={busy}>
              Call /api/echo/hello
            </button>
            <button type="button" id="logout" onClick={signOut} disabled={busy}>
              Sign out
            </button>
          </div>
          {answer !== null && (
            <section>
              <h2 id="api-status">HTTP {answer.status}</h2>
              <pre id="api-result">{answer.body}</pre>
            </section>
          )}
        </>
      )}
    </main>
  )
}

function displayName(user: User): string {
  const name = user.claims.name
  return typeof name === 'string' && name !== '' ? name : user.sub
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2)
  } catch {
    return text
  }
}
