# syntax=docker/dockerfile:1
#
# patgate container image. The TypeScript sources are compiled to plain
# JavaScript in a build stage (Node could strip the types itself, but that
# costs about 30 MB of memory per process for the type stripper); the image
# holds production dependencies, that build (dist/src/), config/,
# routes.yaml and the `patgate` command (bin/, on the PATH), nothing else.
#
#   docker build -t patgate .
#   docker run --read-only --tmpfs /tmp -v patgate-data:/data -p 8080:8080 patgate
#
# See docs/deploy.md. test/unit/dockerfile.test.ts checks this file.

# Pin by digest in production (node:24-bookworm-slim@sha256:…); both stages
# must use the same Node major so the installed packages match the runtime.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- deps: production dependencies only, exactly as locked -------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script, and none gets to run one.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- build: the TypeScript sources compiled to JavaScript ----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Also copies the web page's files (plain ES modules and CSS, served as they are) next to the compiled src/ui/.
RUN npm run build

# ---- runtime ------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime

# The gateway never runs npm, yarn or corepack: leave them out of the final
# filesystem (less for scanners to flag, less for an intruder to use). The data
# directory is the only place the process writes (embedded store, its pepper).
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
        /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
        /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && mkdir -p /data \
 && chown 1000:1000 /data \
 && chmod 0700 /data \
 && ln -s /app/bin/patgate.js /usr/local/bin/patgate

WORKDIR /app

# Code and config stay owned by root: the process (UID 1000) can read but not
# change them, and the root filesystem can be mounted read-only.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
# The CLI (`docker exec … patgate pat list`): it runs the same build, dist/src/cli/.
COPY bin ./bin
COPY config ./config
COPY routes.yaml ./

# PATGATE_HOST: listen on every interface inside the container (the shipped
# config defaults to 127.0.0.1). PATGATE_DATA: the embedded store's directory;
# with Redis (REDIS_URL) nothing is written there.
ENV NODE_ENV=production \
    PATGATE_CONFIG=/app/config/patgate.yaml \
    PATGATE_HOST=0.0.0.0 \
    PATGATE_PORT=8080 \
    PATGATE_DATA=/data

VOLUME ["/data"]
EXPOSE 8080

# The built-in `node` user of the official image; numeric so that Kubernetes'
# runAsNonRoot can verify it without reading /etc/passwd.
USER 1000:1000

# No curl in a slim image: Node's own fetch asks /healthz (process alive).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PATGATE_PORT || '8080') + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# SIGTERM starts the graceful drain (readiness down, in-flight requests and
# streams finish up to the drain deadline); node is PID 1 and handles it itself.
# --max-semi-space-size=8 (MB): V8 would grow its young generation to 3 x 16 MB
# under load; a request's garbage dies young either way, and the smaller
# nursery keeps a busy gateway's memory in its 150 MB budget (bench/README.md,
# S6).
# --incremental-marking-soft-trigger=80 / -hard-trigger=95 (percent of the room
# between the heap after the last full GC and its limit): under a container's
# memory limit, node gives V8 a small heap, V8 then leaves little room above the
# live heap, and its own rule (start marking once that room is no larger than
# the young generation) starts a new full marking right after each one ends:
# large request bodies then cost the gateway about twice the CPU (bench/README.md,
# "S5 under the chart's memory limit"). With these, marking starts once 80 % of
# the room is used (95 %: at once). The heap's limit is unchanged.
# `npm run bench` starts the gateway with exactly these node flags.
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=8", "--incremental-marking-soft-trigger=80", "--incremental-marking-hard-trigger=95", "dist/src/main.js"]
