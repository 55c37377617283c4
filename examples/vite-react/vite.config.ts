import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// https://vite.dev/config/
//
// Development runs behind the gateway (BFF_SPA_DEV_URL=http://localhost:5173): open the
// gateway's URL, not Vite's, so that the app, /auth and /api share one origin and the
// session cookie. Nothing else needs configuring for that: the gateway rewrites Host to
// this server's (so server.allowedHosts keeps its safe default), and Vite's HMR client
// connects its WebSocket to the origin the page came from, the gateway, which passes it
// through after checking Origin (Vite checks its own token).
export default defineConfig({
  plugins: [react()],
  server: {
    port: 5173,
    // Fail instead of moving to 5174: the gateway's BFF_SPA_DEV_URL names this port.
    strictPort: true,
  },
})
