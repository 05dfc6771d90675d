/**
 * Per-request cost of the key store on the S3 path, SQLite and PostgreSQL side by side in one run.
 * A request's store work is what the listener does before its first lookup, `await
 * store.beginRequest()` (null for SQLite, whose change counter is read synchronously), then the key
 * lookup for SigV4 verification and the bucket lookup for routing. Measured:
 * - steady state, one request at a time and N requests at once (PostgreSQL's requests arriving
 *   together share change-id reads: the server counts them, bench/postgres.ts);
 * - the first request after a change (SQLite: the rows read again and the secret unsealed;
 *   PostgreSQL: a change-id read that differs, then a reload of every key and bucket).
 *
 * Both stores are opened with openStore() and filled through their own API (keys.create,
 * buckets.add) with KEY_COUNT keys and one bucket. The PostgreSQL server is a throwaway one on this
 * machine, reached over loopback TCP and sharing its cores. Wall time is the best stretch of
 * batches (as timePerOp); CPU per request is the mean over the whole measurement: the bench
 * process's own (process.cpuUsage: the gateway's side) and the PostgreSQL server's (/proc, 10 ms
 * ticks, hence the long windows).
 *
 * `npx tsx bench/store.ts` prints the table; `runStoreBench()` returns the rows for `npm run bench`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/store.js';
import { startBenchPostgres, type BenchPostgres } from './postgres.js';
import type { BenchRow } from './sigv4.js';

/** Keys in each store (the bench key included): a reload reads them all. */
export const KEY_COUNT = 1000;
const BUCKET = 'photos';
const MASTER_KEY_HEX = '42'.repeat(32);

function row(name: string, us: number, detail: string): BenchRow {
  const shown = us >= 100 ? us.toFixed(0) : us.toFixed(2);
  return { name, value: us, unit: 'µs/op', detail, markdown: `| ${name} | ${shown} µs/op | ${detail} |` };
}

const us = (value: number) => (value >= 100 ? `${value.toFixed(0)} µs` : `${value.toFixed(1)} µs`);

interface Fixture {
  store: Store;
  /** The server behind a PostgreSQL store; null for SQLite. */
  server: BenchPostgres | null;
  accessKeyId: string;
  /** Another key, toggled disabled/enabled to make changes. */
  otherKeyId: string;
  close(): Promise<void>;
}

async function openFixture(kind: 'sqlite' | 'postgres', log: (line: string) => void): Promise<Fixture> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `keygate-bench-store-${kind}-`));
  let server: BenchPostgres | null = null;
  let store: Store | null = null;
  const close = async () => {
    await store?.close();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    if (kind === 'postgres') {
      server = await startBenchPostgres();
      log(`store bench: ${server.version} on ${new URL(server.url).host} (pid ${server.pid})`);
    }
    const config = loadConfig({
      KEYGATE_DATA_DIR: dataDir,
      KEYGATE_MASTER_KEY: MASTER_KEY_HEX,
      KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef',
      ...(server ? { KEYGATE_DATABASE_URL: server.url } : {}),
    });
    store = await openStore(config);
    if (store.kind !== kind) throw new Error(`openStore opened a ${store.kind} store, expected ${kind}`);
    await store.buckets.add({ name: BUCKET });
    const key = await store.keys.create({ name: 'bench', bucket: BUCKET, preset: 'read-write' });
    const others: string[] = [];
    // A few at a time: the PostgreSQL pool has 8 connections (and every insert signals a change).
    for (let i = 1; i < KEY_COUNT; i += 8) {
      const batch = Array.from({ length: Math.min(8, KEY_COUNT - i) }, (_, j) => store!.keys.create({ name: `other-${i + j}`, preset: 'read-only' }));
      for (const created of await Promise.all(batch)) others.push(created.accessKeyId);
    }
    const fixture: Fixture = { store, server, accessKeyId: key.accessKeyId, otherKeyId: others[0]!, close };
    await lookUp(fixture);
    if (server) await reloadsSettled(server);
    if (store.keys.findForVerification(key.accessKeyId)?.secretAccessKey !== key.secretAccessKey)
      throw new Error(`the ${kind} store does not find the bench key`);
    if ((await store.keys.count()) !== KEY_COUNT) throw new Error(`the ${kind} store holds ${await store.keys.count()} keys, expected ${KEY_COUNT}`);
    return fixture;
  } catch (error) {
    await close();
    throw error;
  }
}

/** Waits until the listener's reloads for the setup's inserts are over (none for 300 ms), so none lands in a measurement. */
async function reloadsSettled(server: BenchPostgres): Promise<void> {
  const deadline = Date.now() + 15_000;
  let before = (await server.storeStatements()).reloads;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const now = (await server.storeStatements()).reloads;
    if (now === before) return;
    if (Date.now() > deadline) throw new Error('the PostgreSQL store kept reloading for 15 s after its setup');
    before = now;
  }
}

/** One request's store work, as src/http/s3.ts does it. */
async function lookUp({ store, accessKeyId }: Fixture): Promise<void> {
  await store.beginRequest();
  if (store.keys.findForVerification(accessKeyId) === null) throw new Error('bench key not found');
  if (store.buckets.findForRouting(BUCKET) === null) throw new Error('bench bucket not found');
}

interface RequestCost {
  /** Best stretch, µs of wall time per request. */
  wallUs: number;
  /** Mean CPU of this process per request, µs. */
  cpuUs: number;
  /** Mean CPU of the PostgreSQL server per request, µs; null for SQLite. */
  serverCpuUs: number | null;
  /** Change-id reads per batch of `concurrency` requests; null for SQLite. */
  readsPerBatch: number | null;
  reloads: number | null;
  requests: number;
  /** Requests per batch. */
  concurrency: number;
}

/**
 * Batches of `concurrency` requests started together (Promise.all), one batch after another, for
 * `minMs`; wall time per request from the best stretch of at least STRETCH_MS.
 */
async function timeRequests(fixture: Fixture, concurrency: number, minMs: number): Promise<RequestCost> {
  const STRETCH_MS = 20;
  const batch = () => Promise.all(Array.from({ length: concurrency }, () => lookUp(fixture)));
  const warmUntil = performance.now() + Math.min(300, minMs / 4);
  while (performance.now() < warmUntil) await batch();

  const { server } = fixture;
  const statementsBefore = server ? await server.storeStatements() : null;
  const serverCpuBefore = server?.cpuSeconds() ?? 0;
  const cpuBefore = process.cpuUsage();
  let batches = 0;
  let best = Infinity;
  const deadline = performance.now() + minMs;
  do {
    const start = performance.now();
    let inStretch = 0;
    do {
      await batch();
      inStretch++;
    } while (performance.now() - start < STRETCH_MS);
    best = Math.min(best, ((performance.now() - start) * 1000) / (inStretch * concurrency));
    batches += inStretch;
  } while (performance.now() < deadline);
  const cpu = process.cpuUsage(cpuBefore);
  const serverCpuSeconds = server ? server.cpuSeconds() - serverCpuBefore : 0;
  const statementsAfter = server ? await server.storeStatements() : null;
  const requests = batches * concurrency;
  return {
    wallUs: best,
    cpuUs: (cpu.user + cpu.system) / requests,
    serverCpuUs: server ? (serverCpuSeconds * 1e6) / requests : null,
    readsPerBatch: statementsBefore && statementsAfter ? (statementsAfter.changeIdReads - statementsBefore.changeIdReads) / batches : null,
    reloads: statementsBefore && statementsAfter ? statementsAfter.reloads - statementsBefore.reloads : null,
    requests,
    concurrency,
  };
}

interface ChangeCost {
  /** Median wall time of the first request after a change, µs. */
  wallUs: number;
  /** Mean CPU of this process in that request's window, µs. */
  cpuUs: number;
  /** Mean CPU of the PostgreSQL server in that window, µs (10 ms ticks, summed over the changes). */
  serverCpuUs: number | null;
  /** Over the whole loop, changes included: reloads and change-id reads per change. */
  reloadsPerChange: number | null;
  readsPerChange: number | null;
  changes: number;
}

/**
 * A change (another key disabled or enabled through the store's API, which every instance sees as
 * a change), then one request timed. PostgreSQL's listener may start the reload first on the
 * change's notification: the request then waits for it (and one more read), as a real one would.
 * Each change follows a 5 ms pause (so the listener's extra read is over), for both stores alike:
 * caches are as cold as after any idle moment.
 */
async function timeFirstRequestAfterChange(fixture: Fixture, changes: number): Promise<ChangeCost> {
  const { store, server } = fixture;
  const settle = () => new Promise((resolve) => setTimeout(resolve, 5));
  for (let i = 0; i < 5; i++) {
    await store.keys.setDisabled(fixture.otherKeyId, i % 2 === 0);
    await lookUp(fixture);
  }
  await store.keys.setDisabled(fixture.otherKeyId, false);
  await lookUp(fixture);
  await settle();
  const statementsBefore = server ? await server.storeStatements() : null;
  const walls: number[] = [];
  let cpuUs = 0;
  let serverCpuSeconds = 0;
  for (let i = 0; i < changes; i++) {
    await store.keys.setDisabled(fixture.otherKeyId, i % 2 === 0);
    const serverCpuBefore = server?.cpuSeconds() ?? 0;
    const cpuBefore = process.cpuUsage();
    const start = performance.now();
    await lookUp(fixture);
    walls.push((performance.now() - start) * 1000);
    const cpu = process.cpuUsage(cpuBefore);
    cpuUs += cpu.user + cpu.system;
    if (server) serverCpuSeconds += server.cpuSeconds() - serverCpuBefore;
    // Lets a read queued by the notification finish before the next change.
    await settle();
  }
  const statementsAfter = server ? await server.storeStatements() : null;
  walls.sort((a, b) => a - b);
  return {
    wallUs: walls[Math.floor(walls.length / 2)]!,
    cpuUs: cpuUs / changes,
    serverCpuUs: server ? (serverCpuSeconds * 1e6) / changes : null,
    reloadsPerChange: statementsBefore && statementsAfter ? (statementsAfter.reloads - statementsBefore.reloads) / changes : null,
    readsPerChange: statementsBefore && statementsAfter ? (statementsAfter.changeIdReads - statementsBefore.changeIdReads) / changes : null,
    changes,
  };
}

const perRequestDetail = (cost: RequestCost) =>
  cost.serverCpuUs === null
    ? `CPU ${us(cost.cpuUs)} per request, all in the gateway's thread`
    : `CPU per request: gateway ${us(cost.cpuUs)}, PostgreSQL server ${us(cost.serverCpuUs)}; ${cost.readsPerBatch!.toFixed(2)} change-id reads per ${cost.concurrency === 1 ? 'request' : 'batch'}` +
      (cost.reloads ? `; ${cost.reloads} reloads (something changed the store meanwhile)` : '');

export interface StoreBenchOptions {
  /** Include the PostgreSQL store (default true; needs PostgreSQL's server binaries, see test/helpers/postgres.ts). */
  postgres?: boolean;
  /** Measured time per steady-state row, ms (PostgreSQL's server CPU is read in 10 ms ticks). */
  minMs?: number;
  /** Changes made for each "first request after a change" row. */
  changes?: number;
  log?: (line: string) => void;
}

export async function runStoreBench(options: StoreBenchOptions = {}): Promise<BenchRow[]> {
  const minMs = options.minMs ?? 2000;
  const changes = options.changes ?? 60;
  const log = options.log ?? (() => undefined);
  const sqlite = await openFixture('sqlite', log);
  let postgres: Fixture | null = null;
  try {
    if (options.postgres !== false) postgres = await openFixture('postgres', log);
    const rows: BenchRow[] = [];
    const lookups = '`await beginRequest()` + findForVerification + findForRouting';
    for (const concurrency of [1, 32]) {
      const together = concurrency === 1 ? 'one request at a time' : `${concurrency} requests at once`;
      const lite = await timeRequests(sqlite, concurrency, minMs / 2);
      rows.push(
        row(
          `store per request, SQLite, ${together}: ${lookups}`,
          lite.wallUs,
          `${perRequestDetail(lite)}; one PRAGMA data_version per ${concurrency === 1 ? 'request' : 'batch'}`,
        ),
      );
      if (postgres === null) continue;
      const pg = await timeRequests(postgres, concurrency, minMs);
      rows.push(row(`store per request, PostgreSQL, ${together}: ${lookups}`, pg.wallUs, perRequestDetail(pg)));
      log(`  store ${together}: SQLite ${us(lite.wallUs)}, PostgreSQL ${us(pg.wallUs)} wall per request (${pg.readsPerBatch!.toFixed(2)} reads per batch)`);
    }
    for (const concurrency of [8, 200]) {
      if (postgres === null) break;
      const pg = await timeRequests(postgres, concurrency, minMs);
      rows.push(row(`store per request, PostgreSQL, ${concurrency} requests at once`, pg.wallUs, perRequestDetail(pg)));
      log(`  store ${concurrency} at once: PostgreSQL ${us(pg.wallUs)} wall per request (${pg.readsPerBatch!.toFixed(2)} reads per batch)`);
    }
    const liteChange = await timeFirstRequestAfterChange(sqlite, changes);
    rows.push(
      row(
        `first request after a change, SQLite (${KEY_COUNT} keys): data_version differs, key row read and secret unsealed, bucket row read`,
        liteChange.wallUs,
        `median of ${changes} changes, each after a 5 ms pause; CPU ${us(liteChange.cpuUs)}`,
      ),
    );
    if (postgres === null) return rows;
    const pgChange = await timeFirstRequestAfterChange(postgres, changes);
    rows.push(
      row(
        `first request after a change, PostgreSQL (${KEY_COUNT} keys): change-id read, then a reload of every key and bucket`,
        pgChange.wallUs,
        `median of ${changes} changes, each after a 5 ms pause; CPU gateway ${us(pgChange.cpuUs)}, PostgreSQL server ${us(pgChange.serverCpuUs!)}; ${pgChange.reloadsPerChange!.toFixed(2)} reloads and ${pgChange.readsPerChange!.toFixed(2)} change-id reads per change (the listener's included)`,
      ),
    );
    log(
      `  store after a change: SQLite ${us(liteChange.wallUs)}, PostgreSQL ${us(pgChange.wallUs)} (${pgChange.reloadsPerChange!.toFixed(2)} reloads per change)`,
    );
    return rows;
  } finally {
    await postgres?.close();
    await sqlite.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await runStoreBench({ log: (line) => process.stderr.write(`${line}\n`) });
  console.log('| measurement | result | detail |\n|---|---|---|');
  for (const r of rows) console.log(r.markdown);
}
