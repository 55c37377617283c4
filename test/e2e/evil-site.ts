import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the attacker's page could observe of each attempt, as it writes into its own DOM. */
export type EvilOutcome = {
  name: string;
  /** `rejected`: fetch threw; `opaque`: resolved, but nothing readable; `read`: the page read the answer. */
  outcome: 'rejected' | 'opaque' | 'read';
  status: number;
  detail: string;
};

export type EvilSite = {
  /** http://<host>:<port> */
  origin: string;
  close(): Promise<void>;
};

/**
 * An attacker's page on another origin. On load it tries to use the victim's gateway
 * session with fetch (credentialed CORS, no-cors, and CORS with the CSRF header, which
 * needs a preflight) and publishes what it could see in `#results`; the form posts to
 * /auth/logout when its button is clicked, as a lured user would.
 */
export async function startEvilSite(host: string, gatewayUrl: string): Promise<EvilSite> {
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Totally harmless page</title><link rel="icon" href="data:,"></head>
<body style="font-family: sans-serif">
<h1>Win a prize!</h1>
<p>An attacker's page on <strong id="origin"></strong>, trying the gateway at ${gatewayUrl}</p>
<form id="logout-form" method="post" action="${gatewayUrl}/auth/logout">
  <input type="hidden" name="anything" value="1">
  <button id="claim" type="submit">Claim your prize</button>
</form>
<pre id="results">running…</pre>
<script>
document.getElementById('origin').textContent = location.origin;
const target = ${JSON.stringify(`${gatewayUrl}/api/echo/x`)};
const attempts = [
  ['cors-with-credentials', { credentials: 'include' }],
  ['no-cors-with-credentials', { mode: 'no-cors', credentials: 'include' }],
  ['cors-with-csrf-header', { credentials: 'include', headers: { 'x-csrf': '1' } }],
];
(async () => {
  const results = [];
  for (const [name, init] of attempts) {
    try {
      const response = await fetch(target, init);
      const text = await response.text();
      results.push({ name, outcome: response.type === 'opaque' ? 'opaque' : 'read', status: response.status, detail: text.slice(0, 300) });
    } catch (err) {
      results.push({ name, outcome: 'rejected', status: 0, detail: String(err) });
    }
  }
  document.getElementById('results').textContent = JSON.stringify(results, null, 2);
  document.body.dataset.done = 'true';
})();
</script>
</body></html>`;

  const server = createServer((req, res) => {
    req.resume();
    if (req.url !== '/') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
