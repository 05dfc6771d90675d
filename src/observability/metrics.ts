/**
 * Prometheus metrics for the gateway, on their own registry (so several servers can live in one
 * process, as in tests). S3 request metrics come from the same per-request record as the access
 * log; labels are bounded (operation names, status codes), never key ids or object keys.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { S3RequestRecord } from '../http/s3.js';

export interface GatewayMetrics {
  registry: Registry;
  observeRequest(record: S3RequestRecord): void;
  countRateLimited(): void;
}

export interface MetricsSources {
  /** Counts keys in the store at scrape time. */
  countKeys(): Promise<number>;
  /** Whether the store's change listener is connected; null when the store has none (SQLite). */
  storeListening(): boolean | null;
}

/** Seconds; from a fast HEAD to a multi-minute upload. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function createGatewayMetrics(sources: MetricsSources): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keygate_' });

  const requests = new Counter({
    name: 'keygate_s3_requests_total',
    help: 'S3 requests answered, by operation and HTTP status (operation "unknown" when refused before classification).',
    labelNames: ['operation', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'keygate_s3_request_duration_seconds',
    help: 'Time from request start to the end of the response, by operation.',
    labelNames: ['operation'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const received = new Counter({
    name: 'keygate_s3_received_bytes_total',
    help: 'Bytes read from S3 clients (headers and bodies), by operation.',
    labelNames: ['operation'] as const,
    registers: [registry],
  });
  const sent = new Counter({
    name: 'keygate_s3_sent_bytes_total',
    help: 'Bytes written to S3 clients (headers and bodies), by operation.',
    labelNames: ['operation'] as const,
    registers: [registry],
  });
  const aborted = new Counter({
    name: 'keygate_s3_aborted_requests_total',
    help: 'S3 requests whose client connection closed before the response was complete.',
    labelNames: ['operation'] as const,
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'keygate_rate_limited_requests_total',
    help: 'S3 requests refused with SlowDown by the per-key rate limit.',
    registers: [registry],
  });
  if (sources.storeListening() !== null) {
    new Gauge({
      name: 'keygate_store_change_listener_up',
      help: "1 while the PostgreSQL store's LISTEN connection is up, 0 while it reconnects (requests still check for changes either way).",
      registers: [registry],
      collect() {
        this.set(sources.storeListening() ? 1 : 0);
      },
    });
  }
  new Gauge({
    name: 'keygate_access_keys',
    help: 'Access keys in the store (including expired ones not yet deleted).',
    registers: [registry],
    async collect() {
      this.set(await sources.countKeys());
    },
  });

  // The labelled series of each operation, looked up once: prom-client hashes the label object on
  // every inc() otherwise, five times per request. Operation names come from the operations table
  // and statuses from HTTP, so both maps stay small.
  type CounterSeries = ReturnType<typeof received.labels>;
  const byOperation = new Map<
    string,
    { statuses: Map<number, CounterSeries>; duration: ReturnType<typeof duration.labels>; received: CounterSeries; sent: CounterSeries }
  >();
  const seriesOf = (operation: string) => {
    let series = byOperation.get(operation);
    if (series === undefined) {
      series = { statuses: new Map(), duration: duration.labels(operation), received: received.labels(operation), sent: sent.labels(operation) };
      byOperation.set(operation, series);
    }
    return series;
  };

  return {
    registry,
    observeRequest(record) {
      const operation = record.operation ?? 'unknown';
      const series = seriesOf(operation);
      let counted = series.statuses.get(record.status);
      if (counted === undefined) {
        counted = requests.labels(operation, String(record.status));
        series.statuses.set(record.status, counted);
      }
      counted.inc();
      series.duration.observe(record.durationMs / 1000);
      series.received.inc(record.bytesIn);
      series.sent.inc(record.bytesOut);
      if (record.aborted) aborted.inc({ operation });
    },
    countRateLimited: () => rateLimited.inc(),
  };
}
