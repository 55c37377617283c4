import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { getFreeClusterPort } from './ports.ts';
import { startRedis, type RedisServer } from './redis.ts';

const run = promisify(execFile);

/** `redis-cli` against one node; resolves with its output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30_000 });
  return stdout;
}

export type RedisCluster = {
  /** For BFF_REDIS_CLUSTER_NODES. */
  nodeUrls: string[];
  masters: RedisServer[];
  /** Which master serves a key right now (by its port). */
  masterPortFor(key: string): Promise<number>;
  stop(): Promise<void>;
};

/**
 * Three masters, no replicas, from redis-server child processes joined by
 * `redis-cli --cluster create`. Each node keeps its cluster state in a
 * temporary directory of its own.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'bff-cluster-'));
  const masters: RedisServer[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      masters.push(
        await startRedis({
          pickPort: getFreeClusterPort,
          args: (port) => ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000', '--cluster-require-full-coverage', 'no'],
        }),
      );
    }
    await run('redis-cli', ['--cluster', 'create', ...masters.map((m) => `127.0.0.1:${m.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    // With require-full-coverage off, cluster_state:ok alone does not mean a node knows every
    // slot's owner: wait until each node sees all three masters and all slots served.
    const deadline = Date.now() + 15_000;
    for (const master of masters) {
      let info = '';
      while (!clusterSettled((info = await redisCli(master.port, 'cluster', 'info')), masters.length)) {
        if (Date.now() > deadline) throw new Error(`the test Redis Cluster did not settle on node ${master.port} within 15 s; its CLUSTER INFO:\n${info}`);
        await delay(100);
      }
    }
  } catch (err) {
    await Promise.all(masters.map((m) => m.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    nodeUrls: masters.map((m) => m.url),
    masters,
    async masterPortFor(key) {
      const slot = (await redisCli(masters[0]!.port, 'cluster', 'keyslot', key)).trim();
      const nodes = await redisCli(masters[0]!.port, 'cluster', 'nodes');
      for (const line of nodes.split('\n')) {
        const [, address, flags, , , , , , ...ranges] = line.split(' ');
        if (!address || !flags?.includes('master')) continue;
        for (const range of ranges) {
          const [from, to] = range.split('-').map(Number);
          if (Number(slot) >= (from ?? -1) && Number(slot) <= (to ?? from ?? -1)) return Number(address.split(':')[1]?.split('@')[0]);
        }
      }
      throw new Error(`no master serves slot ${slot}`);
    },
    async stop() {
      await Promise.all(masters.map((m) => m.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function clusterSettled(info: string, nodes: number): boolean {
  return info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384') && info.includes(`cluster_known_nodes:${nodes}`) && info.includes(`cluster_size:${nodes}`);
}

export type RedisSentinelSetup = {
  sentinels: string;
  name: string;
  master: RedisServer;
  replica: RedisServer;
  sentinel: RedisServer;
  /** The port of the current master, as the Sentinel reports it. */
  masterPort(): Promise<number>;
  stop(): Promise<void>;
};

/** One master, one replica and one Sentinel (quorum 1), all child processes. */
export async function startRedisSentinel(name = 'bffmaster'): Promise<RedisSentinelSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'bff-sentinel-'));
  const started: RedisServer[] = [];
  try {
    const master = await startRedis();
    started.push(master);
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    started.push(replica);
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [`sentinel monitor ${name} 127.0.0.1 ${master.port} 1`, `sentinel down-after-milliseconds ${name} 1000`, `sentinel failover-timeout ${name} 5000`, `sentinel parallel-syncs ${name} 1`, ''].join(
        '\n',
      ),
    );
    const sentinel = await startRedis({ configFile: config, args: ['--sentinel'] });
    started.push(sentinel);
    const deadline = Date.now() + 15_000;
    // Ready when the replica is in sync and the Sentinel knows it.
    while (!(await redisCli(sentinel.port, 'sentinel', 'replicas', name)).includes(String(replica.port)) || !(await redisCli(replica.port, 'info', 'replication')).includes('master_link_status:up')) {
      if (Date.now() > deadline) throw new Error('the test Sentinel setup did not come up');
      await delay(100);
    }
    return {
      sentinels: `127.0.0.1:${sentinel.port}`,
      name,
      master,
      replica,
      sentinel,
      async masterPort() {
        const reply = await redisCli(sentinel.port, 'sentinel', 'get-master-addr-by-name', name);
        return Number(reply.trim().split('\n')[1]);
      },
      async stop() {
        await Promise.all(started.map((s) => s.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
