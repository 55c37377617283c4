# syntax=docker/dockerfile:1

# --- build: compile TypeScript to dist/ with the full dev toolchain ---
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies and compiled output only ---
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
# Installed fresh rather than copied from the build stage, so no dev dependency ships.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
# Files stay root-owned: the gateway can read its code and routes but not rewrite them.
USER node
EXPOSE 3000 9090
# slim has no curl; node's fetch checks liveness on the admin port the gateway was configured with.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:${BFF_ADMIN_PORT:-9090}/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# The gateway drains connections on SIGTERM and exits 0.
STOPSIGNAL SIGTERM
CMD ["node", "dist/index.js"]
