import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpProblem } from '../http/problem.ts';

/** Answers an upgrade request with a plain HTTP problem response and closes the socket. */
export function refuseUpgrade(socket: Duplex, problem: HttpProblem): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ type: 'about:blank', title: problem.title, status: problem.status, detail: problem.message, code: problem.code });
  const extra = Object.entries(problem.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}\r\n` +
      `Connection: close\r\nContent-Type: application/problem+json\r\nCache-Control: no-store\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
