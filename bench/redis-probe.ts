import { createClient } from '@redis/client';

/** What a session store costs Redis, and what it leaves readable there, seen from outside. */
export interface RedisProbe {
  /** Commands Redis has executed since it started, INFO (this probe's own way of asking) excluded. */
  commands(): Promise<number>;
  /** Whether `text` appears as it is in any value of any key: a token stored unencrypted. */
  holdsText(text: string): Promise<{ found: boolean; keysScanned: number }>;
  close(): Promise<void>;
}

/** The read command for each Redis type that can hold a string. */
const READ_ALL: Record<string, (key: string) => string[]> = {
  string: (key) => ['GET', key],
  hash: (key) => ['HVALS', key],
  set: (key) => ['SMEMBERS', key],
  list: (key) => ['LRANGE', key, '0', '-1'],
  zset: (key) => ['ZRANGE', key, '0', '-1'],
};

export async function connectRedisProbe(url: string): Promise<RedisProbe> {
  const client = createClient({ url });
  client.on('error', (err: unknown) => console.error('redis probe:', err));
  await client.connect();
  return {
    async commands() {
      const info = await client.info('commandstats');
      let total = 0;
      for (const match of info.matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) if (match[1] !== 'info') total += Number(match[2]);
      return total;
    },
    async holdsText(text) {
      let keysScanned = 0;
      for await (const keys of client.scanIterator({ COUNT: 1000 })) {
        for (const key of keys) {
          keysScanned += 1;
          const type = String(await client.sendCommand(['TYPE', key]));
          const read = READ_ALL[type];
          if (read && flatten(await client.sendCommand(read(key))).some((value) => value.includes(text))) return { found: true, keysScanned };
        }
      }
      return { found: false, keysScanned };
    },
    async close() {
      await client.close();
    },
  };
}

function flatten(reply: unknown): string[] {
  if (typeof reply === 'string') return [reply];
  // Binary values (an encrypted record) as bytes: a token stored as it is would still read as itself.
  if (Buffer.isBuffer(reply)) return [reply.toString('latin1')];
  if (Array.isArray(reply)) return reply.flatMap(flatten);
  return [];
}
