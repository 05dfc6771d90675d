/**
 * Does the gateway's resident memory grow while it serves a steady load?
 *
 * Criterion: split the samples into thirds by time. The first third is warm-up (JIT, connection
 * pools, V8 growing its heap to the size the load needs) and is ignored. The mean RSS of the last
 * third may exceed the mean of the middle third by at most `toleranceBytes`.
 *
 * Why this shape: RSS of a steady Node process wanders up and down by a few MB as V8 collects and
 * malloc returns pages, so single samples (first vs last, max) are noisy; means over a third of
 * the run average that out. A leak, however, adds up with the work done: the two means are a third
 * of the run apart, so a leak of L bytes per request grows the difference by L x (requests in a
 * third). At a few hundred requests/s over a 100 s third that is tens of thousands of requests,
 * so a leak of ~1 KB per request already adds tens of MB and fails a 20 MB tolerance, while a
 * steady state passes. `detectableLeakBytesPerRequest` states that sensitivity for the actual run.
 */

export interface RssSample {
  /** ms on any monotonic clock */
  at: number;
  rss: number;
  /** Requests completed so far when the sample was taken. */
  requests: number;
}

export interface TrendVerdict {
  growing: boolean;
  middleMeanBytes: number;
  lastMeanBytes: number;
  /** lastMean - middleMean */
  growthBytes: number;
  toleranceBytes: number;
  /** Requests served between the middle of the middle third and the middle of the last third. */
  requestsBetween: number;
  /** The smallest per-request leak this run would have caught: tolerance / requestsBetween. */
  detectableLeakBytesPerRequest: number;
  /** Least-squares slope of RSS over the second half, for the report. */
  secondHalfSlopeBytesPerSecond: number;
}

export const MIN_TREND_SAMPLES = 9;

/**
 * At 64 workers the gateway's RSS swings by +-25 MB between samples (bodies of up to 1 MiB in
 * flight, GC timing); 20 MB keeps a steady run well clear while a ~0.5 KB/request leak at the
 * observed ~400 req/s already exceeds it.
 */
export const RSS_GROWTH_TOLERANCE_BYTES = 20 * 1024 * 1024;

export function rssTrend(samples: RssSample[], toleranceBytes: number): TrendVerdict {
  if (samples.length < MIN_TREND_SAMPLES) {
    throw new Error(`a memory trend needs at least ${MIN_TREND_SAMPLES} samples, got ${samples.length}; run the soak longer`);
  }
  const start = samples[0]!.at;
  const span = samples[samples.length - 1]!.at - start;
  const middle = samples.filter((s) => s.at - start >= span / 3 && s.at - start < (2 * span) / 3);
  const last = samples.filter((s) => s.at - start >= (2 * span) / 3);
  const middleMeanBytes = mean(middle.map((s) => s.rss));
  const lastMeanBytes = mean(last.map((s) => s.rss));
  const growthBytes = lastMeanBytes - middleMeanBytes;
  const requestsBetween = Math.max(0, mean(last.map((s) => s.requests)) - mean(middle.map((s) => s.requests)));
  const secondHalf = samples.filter((s) => s.at - start >= span / 2);
  return {
    growing: growthBytes > toleranceBytes,
    middleMeanBytes,
    lastMeanBytes,
    growthBytes,
    toleranceBytes,
    requestsBetween,
    detectableLeakBytesPerRequest: requestsBetween > 0 ? toleranceBytes / requestsBetween : Infinity,
    secondHalfSlopeBytesPerSecond: slope(secondHalf.map((s) => [(s.at - start) / 1000, s.rss] as const)),
  };
}

function mean(values: number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const meanX = mean(points.map(([x]) => x));
  const meanY = mean(points.map(([, y]) => y));
  let covariance = 0;
  let variance = 0;
  for (const [x, y] of points) {
    covariance += (x - meanX) * (y - meanY);
    variance += (x - meanX) ** 2;
  }
  return variance === 0 ? 0 : covariance / variance;
}
