import { createServer, type Server } from 'node:net';

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

/** Redis listens for cluster-bus traffic on its port + 10000, and refuses a bus port above 65535. */
export const CLUSTER_BUS_OFFSET = 10_000;
export const MAX_CLUSTER_PORT = 65_535 - CLUSTER_BUS_OFFSET;

/**
 * Cluster-node candidates come from here rather than from the kernel (port 0): the kernel
 * hands out ports from its ephemeral range (32768–60999 on Linux, 49152–65535 on macOS), to
 * listeners and outgoing connections alike, and may give the port or its bus port to
 * someone else between our probe and redis-server's own bind. Below that range, with the
 * bus ports too, only a deliberate bind can take them.
 */
const CLUSTER_PORT_LOW = 12_000;
const CLUSTER_PORT_HIGH = 22_000;
const CLUSTER_PORT_ATTEMPTS = 200;

/**
 * A port for a Redis Cluster node: at most MAX_CLUSTER_PORT, and both it and its bus port
 * (+10000) free on 127.0.0.1, proved by binding both at once. They are released again
 * before returning, so the caller must still handle losing one of them to a concurrent
 * bind (startRedis picks again when redis-server reports the address in use).
 */
export async function getFreeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < CLUSTER_PORT_ATTEMPTS; attempt++) {
    const port = CLUSTER_PORT_LOW + Math.floor(Math.random() * (CLUSTER_PORT_HIGH - CLUSTER_PORT_LOW + 1));
    if (await canBindAll([port, port + CLUSTER_BUS_OFFSET])) return port;
  }
  throw new Error(
    `getFreeClusterPort: no port in ${CLUSTER_PORT_LOW}–${CLUSTER_PORT_HIGH} had itself and its cluster bus port (+${CLUSTER_BUS_OFFSET}) free on 127.0.0.1 after ${CLUSTER_PORT_ATTEMPTS} tries; free some ports in that range or move CLUSTER_PORT_LOW/HIGH in test/support/ports.ts`,
  );
}

/** True when every port could be listened on at the same time; all probes are closed before resolving. */
async function canBindAll(ports: number[]): Promise<boolean> {
  const probes = await Promise.all(ports.map((port) => bindProbe(port)));
  await Promise.all(probes.map((probe) => (probe ? new Promise<void>((done) => probe.close(() => done())) : Promise.resolve())));
  return probes.every((probe) => probe !== undefined);
}

function bindProbe(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', () => resolve(undefined));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(probe));
  });
}
