import type { RouteConfig } from '../config/types.ts';
import { problems } from '../http/problem-catalogue.ts';
import type { HttpProblem } from '../http/problem.ts';
import { normalisePath } from './path.ts';
import { RouteTable } from './route-table.ts';

const API_PREFIX = '/api';

export interface ResolvedRoute<R extends RouteConfig> {
  route: R;
  /** The normalised request path (for log lines: never the query string). */
  path: string;
  /** Path and original query string, as the upstream must receive them. */
  upstreamUrl: string;
}

/**
 * Turns a raw request URL into the route and upstream URL, or the problem to
 * answer with. The path is normalised once, here, for HTTP and WebSocket alike.
 */
export class ApiRoutes<R extends RouteConfig> {
  private readonly table: RouteTable<R>;

  constructor(routes: readonly R[]) {
    this.table = new RouteTable(routes);
  }

  /** Undefined when the URL is not an `/api` URL at all (someone else serves it). */
  resolve(rawUrl: string): ResolvedRoute<R> | HttpProblem | undefined {
    const queryAt = rawUrl.indexOf('?');
    const rawPath = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
    if (rawPath !== API_PREFIX && !rawPath.startsWith(`${API_PREFIX}/`) && !/^\/api%/i.test(rawPath)) return undefined;
    const normalised = normalisePath(rawPath);
    if (!normalised.ok) return problems.pathNotAcceptable(normalised.reason);
    const { path } = normalised;
    if (path !== API_PREFIX && !path.startsWith(`${API_PREFIX}/`)) return problems.pathLeavesApi();
    const match = this.table.match(path);
    // `/api/orders/../admin` names the orders route but would land elsewhere (another route, or none): refuse rather than re-route.
    if (normalised.lexical !== path) {
      const named = this.table.match(normalised.lexical)?.route;
      if (named !== undefined && named !== match?.route) return problems.pathLeavesPrefix();
    }
    if (!match) return problems.routeNotFound(path);
    return { route: match.route, path, upstreamUrl: match.upstreamPath + (queryAt < 0 ? '' : rawUrl.slice(queryAt)) };
  }
}

export function methodProblem(route: RouteConfig, method: string | undefined): HttpProblem | undefined {
  if (!route.methods || (method !== undefined && route.methods.includes(method))) return undefined;
  return problems.methodNotAllowed(method, route.prefix, route.methods);
}
