import { join } from 'node:path';
import express, { Router, type Request } from 'express';

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
        if (path.endsWith('.html')) res.setHeader('Cache-Control', 'no-cache');
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

function isNavigation(req: Request): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (/^\/(api|auth)(\/|$)/.test(req.path)) return false;
  // A missing file (`/favicon.ico`, `/assets/app.123.js`) is a 404, not the SPA shell.
  if (/\.[A-Za-z0-9]+$/.test(req.path)) return false;
  return req.accepts(['html', 'json']) === 'html';
}
