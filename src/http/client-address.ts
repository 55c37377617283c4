import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { GatewayConfig } from '../config/types.ts';

/** Whether the hop at `address` (0 = the direct peer) is a proxy whose `X-Forwarded-For` is believed. */
export type TrustProxy = (address: string, hop: number) => boolean;

const compiled = new WeakMap<GatewayConfig, TrustProxy>();

/**
 * `BFF_TRUST_PROXY` as one function, compiled once per configuration and used
 * everywhere a client address matters: Express's `req.ip` (rate limits), the
 * proxy's per-client upload limit and the upstream's `X-Forwarded-For`. The
 * same rules as Express's own `trust proxy` setting, through the same library.
 */
export function trustProxyOf(config: GatewayConfig): TrustProxy {
  let trust = compiled.get(config);
  if (trust === undefined) {
    trust = compileTrustProxy(config.trustProxy);
    compiled.set(config, trust);
  }
  return trust;
}

function compileTrustProxy(setting: boolean | number | string): TrustProxy {
  if (setting === true) return () => true;
  if (setting === false) return () => false;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return proxyAddr.compile(setting.split(',').map((entry) => entry.trim()));
}

/** The client's address as `req.ip` gives it: the first untrusted hop, reading `X-Forwarded-For` from the right. */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  return proxyAddr(req, trust);
}

/**
 * `X-Forwarded-For` for the upstream: the incoming chain plus the peer when
 * the peer is a trusted proxy, only the peer otherwise (a browser that sends
 * the header itself claims an address nobody vouched for).
 */
export function upstreamForwardedFor(req: IncomingMessage, trust: TrustProxy): string {
  const peer = req.socket.remoteAddress ?? '';
  const incoming = req.headers['x-forwarded-for'];
  return typeof incoming === 'string' && incoming && trust(peer, 0) ? `${incoming}, ${peer}` : peer;
}
