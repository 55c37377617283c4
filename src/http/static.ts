import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import express, { Router, type Request } from 'express';
import { isGatewayPath } from './gateway-paths.ts';

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
 *
 * Only files whose real path lies inside the directory's real path are served:
 * express.static follows symlinks, and one leading out of the directory (a build
 * step's stray link, a mounted volume) would publish whatever it points at. Such a
 * file is treated as absent, and so is an `index.html` that leads out.
 */
export function staticSpa(dir: string): Router {
  const router = Router();
  const index = join(dir, 'index.html');
  const isInside = confinedTo(dir);
  const files = express.static(dir, {
    index: 'index.html',
    redirect: false,
    setHeaders: (res, path) => {
      const relative = path.slice(dir.length).replace(/\\/g, '/');
      res.setHeader('Cache-Control', path.endsWith('.html') ? 'no-cache' : HASHED.test(relative) ? IMMUTABLE : 'no-cache');
    },
  });
  router.use((req, res, next) => {
    // express.static serves nothing else, so other methods cost no file system call.
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const file = fileFor(dir, req.path);
    // Undecodable: express.static gives its own 400, as before.
    if (file === undefined) return files(req, res, next);
    isInside(file)
      .then((inside) => (inside ? files(req, res, next) : next()))
      .catch(next);
  });
  router.use((req, res, next) => {
    if (!isNavigation(req)) return next();
    isInside(index)
      .then((inside) => {
        if (!inside) return next();
        res.setHeader('Cache-Control', 'no-cache');
        res.sendFile(index, (err) => (err ? next() : undefined));
      })
      .catch(next);
  });
  return router;
}

/**
 * The file express.static would send for a request path (the same decoding and
 * joining as its `send`, and `index.html` for a path ending in `/`), or undefined
 * when the path does not decode.
 */
function fileFor(dir: string, requestPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(requestPath);
  } catch {
    return undefined;
  }
  const path = join(dir, decoded);
  return requestPath.endsWith('/') ? join(path, 'index.html') : path;
}

/**
 * Whether a path's real path lies inside `dir`'s real path; false when it cannot be
 * resolved (absent, a dangling link). The directory is resolved once here and again
 * only when a file seems to lie outside it: a deploy may switch `dir` itself, a
 * symlink, to a new release, whose files must not all turn into 404s.
 */
function confinedTo(dir: string): (path: string) => Promise<boolean> {
  let root = resolvedOrUndefined(() => realpathSync.native(dir));
  const within = (real: string, base: string | undefined): boolean => base !== undefined && (real === base || real.startsWith(base.endsWith(sep) ? base : `${base}${sep}`));
  return async (path) => {
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      return false;
    }
    if (within(real, root)) return true;
    const current = await realpath(dir).catch(() => undefined);
    if (current === root) return false;
    root = current;
    return within(real, root);
  };
}

function resolvedOrUndefined(resolve: () => string): string | undefined {
  try {
    return resolve();
  } catch {
    return undefined;
  }
}

/** A browser navigation to an SPA route: GET/HEAD, wants HTML, not a file, not the gateway's own paths. */
export function isNavigation(req: Request): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (isGatewayPath(req.path)) return false;
  // A missing file (`/favicon.ico`, `/assets/app.123.js`) is a 404, not the SPA shell.
  if (/\.[A-Za-z0-9]+$/.test(req.path)) return false;
  return req.accepts(['html', 'json']) === 'html';
}
