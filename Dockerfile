# syntax=docker/dockerfile:1
# keygate: S3 gateway with scoped keys. Build: docker build -t keygate .
# Run:   docker run -p 9000:9000 -p 127.0.0.1:9001:9001 -v keygate-data:/data \
#          -e KEYGATE_PUBLIC_URL=https://s3.example.com \
#          -e RUNPOD_S3_ACCESS_KEY=... -e RUNPOD_S3_SECRET_KEY=... keygate
# (README, "Docker": the admin token is in `docker logs`; run the CLI with `docker exec`.)

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    KEYGATE_DATA_DIR=/data \
    KEYGATE_HOST=0.0.0.0 \
    KEYGATE_PORT=9000 \
    KEYGATE_ADMIN_HOST=0.0.0.0 \
    KEYGATE_ADMIN_PORT=9001
# A small young generation and a heap cap keep RSS under 150 MB under load (the live heap is
# ~20 MB; bodies stream through off-heap buffers). `keygate serve` raises V8's heap growing factor
# so the cap does not turn streamed bytes into back-to-back full GCs (src/heap-tuning.ts).
# See docs/benchmarks.md.
ENV NODE_OPTIONS="--max-semi-space-size=4 --max-old-space-size=128"
# One malloc arena instead of up to 8 per core: the 64 KiB socket-read buffers that large bodies pass
# through are freed back into one pool and reused, instead of each thread's arena keeping its own
# freed pages resident (peak RSS over a 1 GiB round trip ~10-15 MB lower, same CPU per request).
ENV MALLOC_ARENA_MAX="1"
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
RUN mkdir -p /data && chown node:node /data && ln -s /app/dist/cli/main.js /usr/local/bin/keygate && chmod +x /app/dist/cli/main.js
USER node
VOLUME ["/data"]
EXPOSE 9000 9001
# The port the gateway listens on, whatever KEYGATE_PORT says.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.KEYGATE_PORT||'9000')+'/_health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/cli/main.js", "serve"]
