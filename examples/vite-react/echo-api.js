// A stand-in for your API, for trying the example: it answers every request with what it
// received from the gateway, saying whether a bearer token came along (never the token).
// Run it with `npm run api` (PORT, default 3002); a real API validates the token instead.
import { createServer } from 'node:http'

const port = Number(process.env.PORT ?? 3002)

createServer((req, res) => {
  req.resume()
  const body = {
    message: 'Hello from the echo API',
    method: req.method,
    path: req.url,
    bearerToken: /^Bearer \S+$/i.test(req.headers.authorization ?? '') ? 'received (injected by the gateway)' : 'none',
    cookieHeader: req.headers.cookie === undefined ? 'none (the gateway strips it)' : 'received',
    csrfHeader: req.headers['x-csrf'] ?? 'none',
  }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(JSON.stringify(body))
}).listen(port, '127.0.0.1', () => console.log(`echo API on http://127.0.0.1:${port}`))
