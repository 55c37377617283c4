# syntax=docker/dockerfile:1

# --- build: compile TypeScript to dist/ with the full dev toolchain ---
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- dev-idp: the development OpenID provider (npm run idp) for the compose quick start
# (examples/compose); any user name signs in: never for production ---
FROM build AS dev-idp
COPY demo ./demo
ENV IDP_HOST=0.0.0.0 \
    IDP_PORT=3001
USER 1000:1000
EXPOSE 3001
CMD ["node", "demo/start.js", "idp"]

# --- runtime (the default target): production dependencies and compiled output only ---
FROM node:24-slim AS runtime
ARG VERSION=0.0.0-dev
LABEL org.opencontainers.image.title="bff-gateway" \
      org.opencontainers.image.description="Backend-for-Frontend authentication gateway: OpenID Connect on the server, encrypted sessions, token-injecting reverse proxy" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
ENV NODE_ENV=production \
    BFF_ROUTES_FILE=/etc/bff/routes.json
WORKDIR /app
# Installed fresh rather than copied from the build stage, so no dev dependency ships.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# No routes are baked in: mount yours at /etc/bff/routes.json (or point BFF_ROUTES_FILE
# elsewhere); without one the gateway refuses to start, naming BFF_ROUTES_FILE.
# Files stay root-owned: the gateway can read its code but not rewrite it. The user is
# numeric (the image's `node` user) so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 3000 9090
# Probes the admin port the gateway was configured with, from the environment or BFF_ENV_FILE.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "dist/healthcheck.js"]
# The gateway drains connections on SIGTERM and exits 0.
STOPSIGNAL SIGTERM
# V8's young generation capped as bin/bff-gateway.js caps it (README, Performance).
CMD ["node", "--max-semi-space-size=16", "dist/index.js"]
