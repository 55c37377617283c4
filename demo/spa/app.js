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
  if (response.status === 401) await loadUser();
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
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function formatSeconds(total) {
  if (typeof total !== 'number') return 'an unknown time';
  const minutes = Math.floor(total / 60);
  return minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min ${total % 60} s`;
}
