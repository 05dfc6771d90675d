/**
 * `keygate serve`: opens the store and starts the two listeners, the admin API and the S3 listener
 * (src/http/s3.ts), sharing the same store and config.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Config } from './config.js';
import { BucketObjects } from './buckets/objects.js';
import { createAdminApp } from './http/admin.js';
import { prepareAdminToken } from './http/admin-token.js';
import { answerClientError } from './http/respond.js';
import { attachExpectContinue, createS3Listener, type S3RequestRecord } from './http/s3.js';
import { openAccessLog } from './observability/access-log.js';
import { createGatewayMetrics } from './observability/metrics.js';
import { KeyRateLimiter } from './observability/rate-limit.js';
import { openStore, type Store } from './store/open.js';
import { UpstreamForwarder } from './upstream/forward.js';
import { UpstreamResolver } from './upstream/resolver.js';
import { RunpodVolumeApi } from './upstream/runpod-volumes.js';
import { BucketLifecycle } from './buckets/lifecycle.js';

export interface StartServerOptions {
  /** Use this store instead of opening one (it is then not closed by close()). */
  store?: Store;
  /** Where startup lines (listening addresses, a generated admin token) go. Defaults to stdout. */
  announce?: (text: string) => void;
}

export interface RunningServer {
  /** e.g. http://127.0.0.1:9001 (the actual port when config.adminPort is 0). */
  adminUrl: string;
  /** The S3 endpoint as bound, e.g. http://localhost:9000. */
  s3Url: string;
  close(): Promise<void>;
}

export async function startServer(config: Config, options: StartServerOptions = {}): Promise<RunningServer> {
  const announce = options.announce ?? ((text: string) => process.stdout.write(text));
  const store = options.store ?? (await openStore(config));
  // Read before the listeners start: from then on nothing waits until the handlers are attached.
  let registeredBuckets: number;
  try {
    registeredBuckets = (await store.buckets.list()).length;
  } catch (error) {
    if (!options.store) await store.close();
    throw error;
  }
  // Both listeners are bound before anything is generated or announced: a start that fails (port
  // taken, bad host) must not have used up the one showing of a newly generated admin token.
  const adminServer = createServer();
  const s3Server = createServer({
    // No cap on a whole request: a multi-GiB upload may take longer than Node's default 5 min.
    // Stalled clients are caught by the idle timeout below.
    requestTimeout: 0,
    // Request headers must arrive in time, however slowly they trickle (slowloris). Node derives its
    // default from requestTimeout, which is 0 here, and would then apply no limit at all.
    headersTimeout: S3_HEADERS_TIMEOUT_MS,
    // How often that deadline is checked (Node's default: 30 s).
    connectionsCheckingInterval: 5_000,
    // A request without Host gets the gateway's S3 XML error (path-style needs no Host), not Node's bare 400.
    requireHostHeader: false,
  });
  try {
    await listen(adminServer, config.adminHost, config.adminPort, 'KEYGATE_ADMIN_HOST / KEYGATE_ADMIN_PORT');
    await listen(s3Server, config.host, config.port, 'KEYGATE_HOST / KEYGATE_PORT');
  } catch (error) {
    await Promise.all([closeServer(adminServer), closeServer(s3Server)]);
    if (!options.store) await store.close();
    throw error;
  }
  // From here on nothing waits: the handlers are attached before any connection is read.
  try {
    const adminToken = prepareAdminToken(config, { announce });
    const metrics = createGatewayMetrics({ countKeys: () => store.keys.count(), storeListening: () => store.listening() });
    // One pool of keep-alive connections per upstream origin, for every request of this server.
    const forwarder = new UpstreamForwarder(config.upstreamTimeouts);
    const runpodRest = RunpodVolumeApi.fromConfig(config);
    const resolver = new UpstreamResolver({
      config,
      registry: store.buckets,
      forwarder,
      genericCapabilities: { trailingChecksums: config.upstreamTrailingChecksums },
      runpodBucketLifecycle: runpodRest !== null && config.runpodCredentials !== null,
    });
    // Creating and deleting RunPod buckets: one service for S3 requests and the admin side alike.
    const lifecycle = new BucketLifecycle({ config, registry: store.buckets, rest: runpodRest, resolver, forwarder });
    const adminApp = createAdminApp({
      config,
      store,
      adminToken,
      metrics,
      dashboard: { resolver, objects: new BucketObjects(resolver, forwarder), lifecycle, idleTimeoutMs: config.dashboardIdleTimeoutMs },
    });
    const adminListener = getRequestListener(adminApp.fetch);
    adminServer.on('request', (req: IncomingMessage, res: ServerResponse) => void adminListener(req, res));
    const accessLog = openAccessLog(config.accessLog);
    // Always there: keys with their own limit are limited even when KEYGATE_RATE_LIMIT is off.
    const rateLimiter = new KeyRateLimiter(config.rateLimit, undefined, () => metrics.countRateLimited());
    const s3Listener = createS3Listener({
      config,
      store,
      resolver,
      forwarder,
      lifecycle,
      admit: (key) => rateLimiter.admit(key.accessKeyId, key.rateLimit),
      observe: (record: S3RequestRecord) => {
        accessLog?.write(record);
        metrics.observeRequest(record);
      },
    });
    s3Server.on('request', s3Listener);
    // A connection silent in both directions for longer than the upstream may take to answer is dead.
    s3Server.setTimeout(config.upstreamTimeouts.headersTimeoutMs + 60_000);
    // Idle keep-alive connections are closed after this (announced as `Keep-Alive: timeout=65`).
    // Node's 5 s default races clients that reuse a pooled connection just as the gateway closes
    // it (the AWS SDK's and urllib3's pools keep idle sockets with no timeout of their own): they
    // see "socket hang up" mid-request. Above the 60 s idle timeout of common load balancers, so
    // a balancer in front closes first, never the gateway under it.
    s3Server.keepAliveTimeout = S3_KEEP_ALIVE_TIMEOUT_MS;
    // Requests Node's HTTP parser refuses get an S3 XML error instead of a bare 400.
    s3Server.on('clientError', answerClientError);
    attachExpectContinue(s3Server, s3Listener);

    const adminUrl = urlOf(adminServer, config.adminHost);
    const s3Url = urlOf(s3Server, config.host);
    announce(`keygate admin API listening on ${adminUrl}\n`);
    announce(`keygate S3 endpoint listening on ${s3Url} (region ${config.region})\n`);
    announce(
      config.publicUrlIsDefault
        ? `public URL ${config.publicUrl} (the default: clients on other hosts or behind a proxy need KEYGATE_PUBLIC_URL)\n`
        : `public URL ${config.publicUrl}\n`,
    );
    announce(`key store: ${store.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'} at ${store.location}\n`);
    for (const warning of configurationWarnings(config, registeredBuckets)) announce(`warning: ${warning}\n`);
    return {
      adminUrl,
      s3Url,
      close: async () => {
        await Promise.all([closeServer(adminServer), closeServer(s3Server)]);
        await forwarder.close();
        await accessLog?.close();
        if (!options.store) await store.close();
      },
    };
  } catch (error) {
    await Promise.all([closeServer(adminServer), closeServer(s3Server)]);
    if (!options.store) await store.close();
    throw error;
  }
}

/** Configuration that starts but cannot serve what an operator probably expects. */
function configurationWarnings(config: Config, registeredBuckets: number): string[] {
  const warnings: string[] = [];
  const routes = config.defaultUpstream !== null || config.runpodCredentials !== null || config.runpodApiKey !== null || registeredBuckets > 0;
  if (!routes) {
    warnings.push(
      'no upstream is configured: no default upstream (KEYGATE_UPSTREAM_ENDPOINT…), no RunPod credentials (RUNPOD_S3_ACCESS_KEY…), ' +
        'no registered buckets; every S3 request will answer NoSuchBucket. See docs/configuration.md.',
    );
  }
  if (config.runpodApiKey !== null && config.runpodCredentials !== null) {
    if (config.runpodAllowVolumeDelete) {
      warnings.push(
        'KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1: keys with the admin permission can delete empty RunPod buckets, and their network volumes with them (docs/runpod.md).',
      );
    }
  } else if (config.runpodDefaultDatacenter !== null || config.runpodAllowVolumeDelete) {
    warnings.push(
      'KEYGATE_RUNPOD_DEFAULT_DATACENTER / KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE have no effect: creating and deleting RunPod buckets needs RUNPOD_API_KEY, RUNPOD_S3_ACCESS_KEY and RUNPOD_S3_SECRET_KEY.',
    );
  }
  return warnings;
}

/** Listens, turning the usual bind failures into a message naming the setting to change. */
export function listen(server: Server, host: string, port: number, settings: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is already in use (another keygate?)`
          : error.code === 'EACCES'
            ? `not allowed to listen on ${host}:${port}`
            : `cannot listen on ${host}:${port} (${error.code ?? error.message})`;
      reject(new ListenError(`${why}; change ${settings} or stop the other process.`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListenError';
  }
}

function urlOf(server: Server, host: string): string {
  const { port } = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${shownHost}:${port}`;
}

/** How long a client may take to send a request's headers. */
export const S3_HEADERS_TIMEOUT_MS = 30_000;

/** How long the S3 listener keeps an idle client connection open. */
export const S3_KEEP_ALIVE_TIMEOUT_MS = 65_000;

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Idle keep-alive connections would otherwise hold close() open.
    server.closeIdleConnections();
  });
}
