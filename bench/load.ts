/**
 * A closed-loop load generator kept deliberately cheap, since it shares the machine's two cores
 * with what it measures: one undici Pool with keep-alive connections, `concurrency` loops each
 * sending one request at a time, and requests that are prepared once (presigned URLs) so the
 * client does the same tiny amount of work per request whichever target it hits.
 */
import { Pool } from 'undici';

export interface LoadOptions {
  /** e.g. http://127.0.0.1:9000 */
  origin: string;
  method: 'GET' | 'HEAD';
  /** Request targets (path + query), used round-robin. */
  paths: string[];
  concurrency: number;
  durationMs: number;
  /** Requests in this window are sent but not counted (connections open, JITs warm up). */
  warmupMs: number;
  /** Expected response body length for GET (checked on every response). */
  expectedBytes?: number;
  /** Called when the warm-up ends and the measured window begins (e.g. to read a process's CPU time). */
  onMeasureStart?: () => void;
}

export interface LoadResult {
  /** Requests counted: sent in the measured window. */
  requests: number;
  /** Every request answered, the warm-up's included (what a profile of the whole run saw). */
  answered: number;
  errors: number;
  /** First unexpected status or failure, for the report. */
  firstError: string | null;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  durationMs: number;
}

export async function runClosedLoop(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.origin, {
    connections: options.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
  });
  const latencies: number[] = [];
  let requests = 0;
  let answered = 0;
  let errors = 0;
  let firstError: string | null = null;
  let next = 0;
  const start = performance.now();
  const measureFrom = start + options.warmupMs;
  const stopAt = measureFrom + options.durationMs;
  const measureStartTimer = options.onMeasureStart ? setTimeout(options.onMeasureStart, options.warmupMs) : null;

  const worker = async () => {
    for (;;) {
      const sentAt = performance.now();
      if (sentAt >= stopAt) return;
      const path = options.paths[next++ % options.paths.length]!;
      let failure: string | null = null;
      try {
        // reset: false — undici otherwise closes the connection after every HEAD (a guard against
        // servers that send a body with HEAD responses), which would measure TCP setup, not HEAD.
        const response = await pool.request({ path, method: options.method, reset: false });
        let bytes = 0;
        for await (const chunk of response.body) bytes += (chunk as Buffer).length;
        if (response.statusCode !== 200) failure = `${options.method} ${path} -> ${response.statusCode}`;
        else if (options.method === 'GET' && options.expectedBytes !== undefined && bytes !== options.expectedBytes) {
          failure = `${options.method} ${path} -> ${bytes} bytes, expected ${options.expectedBytes}`;
        }
      } catch (error) {
        failure = `${options.method} ${path} -> ${String(error)}`;
      }
      const doneAt = performance.now();
      answered++;
      if (sentAt < measureFrom) continue;
      requests++;
      latencies.push(doneAt - sentAt);
      if (failure !== null) {
        errors++;
        firstError ??= failure;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  if (measureStartTimer) clearTimeout(measureStartTimer);
  // Requests sent inside the window are counted even when they finish after it, so the window ends
  // when the last of them finished.
  const measuredMs = Math.max(1, performance.now() - measureFrom);
  await pool.close();
  latencies.sort((a, b) => a - b);
  return {
    requests,
    answered,
    errors,
    firstError,
    requestsPerSecond: (requests / measuredMs) * 1000,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    durationMs: measuredMs,
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
