import type { BrowserContext, Page } from 'playwright-core';

export type RecordedBody = { method: string; url: string; status: number; body: string };

export type BodyRecorder = {
  readonly bodies: readonly RecordedBody[];
  /** Responses whose body could not be read: each is a hole in the scan. */
  readonly failures: readonly string[];
  stop(): Promise<void>;
};

type RequestPaused = {
  requestId: string;
  request: { url: string; method: string };
  responseStatusCode?: number;
};

/**
 * Reads the body of every response to `page` whose URL starts with `urlPrefix`, before
 * the page gets it. Playwright's `response.body()` loses the race against a page that
 * navigates as soon as it has read a response (the SPA's logout does exactly that), and
 * gets nothing for a body the page never reads; holding each response at the DevTools
 * protocol's Response stage cannot miss one.
 *
 * This is Chromium's own interception, on a session of its own: Playwright's `route()`
 * would answer CORS preflights by itself and so fake the cross-origin tests.
 */
export async function recordBodies(context: BrowserContext, page: Page, urlPrefix: string): Promise<BodyRecorder> {
  const bodies: RecordedBody[] = [];
  const failures: string[] = [];
  const session = await context.newCDPSession(page);
  session.on('Fetch.requestPaused', (event: RequestPaused) => {
    void (async () => {
      try {
        const status = event.responseStatusCode ?? 0;
        // A redirect has no body.
        if (status < 300 || status >= 400) {
          const { body, base64Encoded } = await session.send('Fetch.getResponseBody', { requestId: event.requestId });
          bodies.push({ method: event.request.method, url: event.request.url, status, body: base64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body });
        }
      } catch (err) {
        failures.push(`${event.request.method} ${event.request.url}: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        // Always let the response go on, or the page would hang; it fails only when the page is gone.
        await session.send('Fetch.continueResponse', { requestId: event.requestId }).catch(() => {});
      }
    })().catch(() => {});
  });
  await session.send('Fetch.enable', { patterns: [{ urlPattern: `${urlPrefix}*`, requestStage: 'Response' }] });
  return {
    bodies,
    failures,
    async stop() {
      await session.detach().catch(() => {});
    },
  };
}
