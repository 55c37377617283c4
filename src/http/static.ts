import { join } from 'node:path';
import express, { Router, type Request } from 'express';

const IMMUTABLE = 'public, max-age=31536000, immutable';
/**
 * Content-hashed build output: anything under `/assets/` (Vite's output
 * directory) or with a hex hash in its name (`main.3f2a1b9c.js`, webpack and
 * Create React App). Only these get a year of caching: a file whose name does
 * not change with its content must never be cached that way.
 */
const HASHED = /(^|\/)assets\/|\.[0-9a-f]{8,}\.[A-Za-z0-9]+$/;

/**
 * Serves the SPA: its files as they are, and `index.html` for any other
 * navigation (history-mode routing), never for `/api` or `/auth`.
 * `index.html` is always revalidated so that a deploy is picked up at once.
 */
export function staticSpa(dir: string): Router {
  const router = Router();
  const index = join(dir, 'index.html');
  router.use(
    express.static(dir, {
      index: 'index.html',
      redirect: false,
      setHeaders: (res, path) => {
        const relative = path.slice(dir.length).replace(/\\/g, '/');
        res.setHeader('Cache-Control', path.endsWith('.html') ? 'no-cache' : HASHED.test(relative) ? IMMUTABLE : 'no-cache');
      },
    }),
  );
  router.use((req, res, next) => {
    if (!isNavigation(req)) return next();
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(index, (err) => (err ? next() : undefined));
  });
  return router;
}

/** A browser navigation to an SPA route: GET/HEAD, wants HTML, not a file, not the gateway's own paths. */
export function isNavigation(req: Request): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (/^\/(api|auth)(\/|$)/.test(req.path)) return false;
  // A missing file (`/favicon.ico`, `/assets/app.123.js`) is a 404, not the SPA shell.
  if (/\.[A-Za-z0-9]+$/.test(req.path)) return false;
  return req.accepts(['html', 'json']) === 'html';
}
