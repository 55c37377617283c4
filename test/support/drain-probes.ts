import http from 'node:http';
import { connect } from 'node:net';

/** What a drain test needs of an answer. */
export type Answer = { status: number; body: string };

/**
 * An API call (CSRF header included), resolving with the status and the whole body; on a
 * connection of its own unless an agent is given (a new connection is also what a cluster
 * hands to its next worker).
 */
export function apiGet(url: string, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolveAnswer, reject) => {
    const req = http.get(url, { agent, headers: { 'x-csrf': '1' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Resolves with the connect error's code (ECONNREFUSED once a server stopped listening), or 'connected'. */
export function tryConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((done) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      done('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
  });
}
