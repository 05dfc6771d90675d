/**
 * Load soak (issue 5, hardening), in two modes that share one run (run.ts) and run one after the
 * other in this file (the soak project lets files run in parallel; these two must not):
 *
 * 1. One gateway process in front of a real s3rver serves mixed S3 traffic from
 *    KEYGATE_SOAK_CONCURRENCY workers (default 64) for KEYGATE_SOAK_SECONDS (default 300) while
 *    keys are deleted mid-run through the admin API and through the CLI (another process writing
 *    the same SQLite file).
 * 2. Three gateway processes on one PostgreSQL key store, in front of one s3rver, serve the same
 *    traffic from KEYGATE_SOAK_MULTI_CONCURRENCY workers (default 48, worker i on instance i % 3)
 *    for KEYGATE_SOAK_MULTI_SECONDS (default 120) while keys are deleted mid-run alternately
 *    through a rotating instance's admin API and through the CLI pointed at PostgreSQL: a deletion
 *    made anywhere must hold on every instance from the very next request.
 *
 * Both assert zero requests accepted with a key after its deletion completed (on any instance), no
 * 5xx, no client-side failures, no scope breach, every answer matching what was stored, no RSS
 * growth trend in any gateway process, every process alive at the end, and last_used_at kept
 * current in the store. docs/soak.md explains the variables and how to run one mode alone.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startSharedStoreInstances, startSingleGateway } from './deployments.js';
import { positiveNumberFromEnv, runSoak, type SoakDeployment } from './run.js';

const SECONDS = positiveNumberFromEnv('KEYGATE_SOAK_SECONDS', 300);
const CONCURRENCY = Math.round(positiveNumberFromEnv('KEYGATE_SOAK_CONCURRENCY', 64));
const MULTI_SECONDS = positiveNumberFromEnv('KEYGATE_SOAK_MULTI_SECONDS', 120);
const MULTI_CONCURRENCY = Math.round(positiveNumberFromEnv('KEYGATE_SOAK_MULTI_CONCURRENCY', 48));
const INSTANCES = 3;
/** Sockets for the AWS SDK's few requests (~6% of traffic), in total over the instances. */
const SDK_SOCKETS = 16;
/** On top of the traffic time: start-up, final checks, and the last rotation's CLI run. */
const TIMEOUT_MARGIN_MS = 300_000;

describe('one gateway', () => {
  let deployment: SoakDeployment | undefined;
  beforeAll(async () => {
    deployment = await startSingleGateway();
  });
  afterAll(async () => {
    await deployment?.stop();
  });

  it(
    `stays correct and flat under ${CONCURRENCY} concurrent workers for ${SECONDS} s with keys revoked mid-run`,
    () => runSoak(deployment!, { title: 'soak', seconds: SECONDS, concurrency: CONCURRENCY, sdkSocketsPerInstance: SDK_SOCKETS }),
    SECONDS * 1000 + TIMEOUT_MARGIN_MS,
  );
});

describe(`${INSTANCES} instances on one PostgreSQL store`, () => {
  let deployment: SoakDeployment | undefined;
  beforeAll(async () => {
    deployment = await startSharedStoreInstances(INSTANCES);
  });
  afterAll(async () => {
    await deployment?.stop();
  });

  it(
    `stay correct and flat under ${MULTI_CONCURRENCY} concurrent workers for ${MULTI_SECONDS} s with keys revoked mid-run through any instance and the CLI`,
    () =>
      runSoak(deployment!, {
        title: `soak (${INSTANCES} instances)`,
        seconds: MULTI_SECONDS,
        concurrency: MULTI_CONCURRENCY,
        sdkSocketsPerInstance: Math.ceil(SDK_SOCKETS / INSTANCES),
      }),
    MULTI_SECONDS * 1000 + TIMEOUT_MARGIN_MS,
  );
});
