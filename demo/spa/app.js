// The SPA knows nothing of OAuth: it has a same-origin cookie it cannot read, sends
// `x-csrf: 1` on anything that changes state or reaches an API, and follows the gateway.
'use strict';

const CSRF = { 'x-csrf': '1' };

const el = {
  status: document.getElementById('status'),
  login: document.getElementById('login'),
  callApi: document.getElementById('call-api'),
  logout: document.getElementById('logout'),
  claims: document.getElementById('claims'),
  apiSection: document.getElementById('api-section'),
  apiStatus: document.getElementById('api-status'),
  apiResult: document.getElementById('api-result'),
  explained: document.getElementById('explained'),
  pageCookies: document.getElementById('page-cookies'),
  apiSawCookie: document.getElementById('api-saw-cookie'),
  tokenFacts: document.getElementById('token-facts'),
};

el.login.addEventListener('click', () => {
  window.location.assign('/auth/login?returnTo=' + encodeURIComponent('/'));
});
el.callApi.addEventListener('click', () => run(el.callApi, callApi));
el.logout.addEventListener('click', () => run(el.logout, logout));

loadUser().catch(showError);

async function loadUser() {
  const response = await fetch('/auth/user', { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (response.status === 401) {
    showSignedOut();
    return;
  }
  if (!response.ok) throw new Error(`GET /auth/user answered ${response.status}`);
  showUser(await response.json());
}

function showSignedOut() {
  el.status.textContent = 'Not signed in.';
  el.status.classList.remove('error');
  el.login.hidden = false;
  el.callApi.hidden = true;
  el.logout.hidden = true;
  el.claims.hidden = true;
  el.apiSection.hidden = true;
}

function showUser(user) {
  const claims = user.claims || {};
  const expires = user.session ? ` Session ends in ${formatSeconds(user.session.expiresIn)}, or after ${formatSeconds(user.session.idleExpiresIn)} idle.` : '';
  el.status.textContent = `Signed in as ${claims.name || user.sub}.${expires}`;
  el.status.classList.remove('error');
  el.login.hidden = true;
  el.callApi.hidden = false;
  el.logout.hidden = false;

  const body = el.claims.tBodies[0];
  body.replaceChildren(
    ...Object.entries(claims).map(([name, value]) => {
      const row = document.createElement('tr');
      const key = document.createElement('td');
      const val = document.createElement('td');
      key.textContent = name;
      val.textContent = typeof value === 'string' ? value : JSON.stringify(value);
      row.append(key, val);
      return row;
    }),
  );
  el.claims.hidden = false;
}

async function callApi() {
  const response = await fetch('/api/echo/hello', { credentials: 'same-origin', headers: { ...CSRF, accept: 'application/json' } });
  const text = await response.text();
  el.apiSection.hidden = false;
  el.apiStatus.textContent = `HTTP ${response.status}`;
  el.apiResult.textContent = prettyJson(text);
  explain(response.ok ? parseJson(text) : undefined);
  if (response.status === 401) await loadUser();
}

/** Fills the "what just happened" panel from the API's own answer (it never contains the token). */
function explain(answer) {
  el.explained.hidden = !answer || !answer.tokenClaims;
  if (el.explained.hidden) return;
  const token = answer.tokenClaims;
  el.pageCookies.textContent = JSON.stringify(document.cookie);
  el.apiSawCookie.textContent = answer.receivedCookieHeader ? 'yes' : 'no';
  const left = typeof token.exp === 'number' ? `, valid for ${formatSeconds(Math.max(0, token.exp - Math.floor(Date.now() / 1000)))} more` : '';
  el.tokenFacts.textContent = `${token.active ? 'active' : 'not active'}, issued to ${token.client_id} for ${token.sub}${left}`;
}

async function logout() {
  const response = await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin', headers: CSRF });
  if (!response.ok) throw new Error(`POST /auth/logout answered ${response.status}`);
  const { redirectUrl } = await response.json();
  window.location.assign(redirectUrl || '/');
}

/** Disables the button while its action runs, and reports a failure instead of swallowing it. */
async function run(button, action) {
  button.disabled = true;
  try {
    await action();
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

function showError(err) {
  el.status.textContent = `Something went wrong: ${err instanceof Error ? err.message : String(err)}`;
  el.status.classList.add('error');
}

function prettyJson(text) {
  const value = parseJson(text);
  return value === undefined ? text : JSON.stringify(value, null, 2);
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** 7260 → "2 h 1 min", 95 → "1 min 35 s", 40 → "40 s". */
function formatSeconds(total) {
  if (typeof total !== 'number') return 'an unknown time';
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (hours > 0) return minutes > 0 ? `${hours} h ${minutes} min` : `${hours} h`;
  if (minutes > 0) return seconds > 0 ? `${minutes} min ${seconds} s` : `${minutes} min`;
  return `${seconds} s`;
}
