import type { RouteConfig } from '../config/types.ts';

export interface RouteMatch<R extends RouteConfig> {
  route: R;
  /** The upstream path: the rewrite (or the prefix) followed by the rest of the request path. */
  upstreamPath: string;
}

/** Longest-prefix matching on whole path segments (`/api/orders` matches `/api/orders/1`, not `/api/ordersX`). */
export class RouteTable<R extends RouteConfig> {
  private readonly routes: readonly R[];

  constructor(routes: readonly R[]) {
    this.routes = [...routes].sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(path: string): RouteMatch<R> | undefined {
    for (const route of this.routes) {
      const { prefix } = route;
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length);
      if (rest !== '' && !rest.startsWith('/') && prefix !== '/') continue;
      const base = route.rewrite ?? prefix;
      const upstreamPath = base === '/' ? rest || '/' : base + rest;
      return { route, upstreamPath };
    }
    return undefined;
  }
}
