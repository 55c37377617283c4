import { createServer } from 'node:net';

/**
 * Asks the kernel for a free TCP port on 127.0.0.1. For servers whose URL must be known
 * before they listen (a gateway's public URL is registered at the IdP first); anything that
 * can listen on port 0 itself should do so instead, since the port may be taken again
 * between this call and the real listen.
 */
export function getFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      if (address === null || typeof address === 'string') {
        probe.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      probe.close(() => resolve(address.port));
    });
  });
}
