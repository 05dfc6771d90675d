/**
 * Per-request cost of the database lookups on the S3 path: the key (with its unsealed secret) for
 * SigV4 verification and the bucket for routing. Both reuse rows while SQLite's data_version shows
 * no change; the "uncached" rows show what a query plus an AES-GCM open cost instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { sealSecret, unsealSecret } from '../src/crypto/seal.js';
import { openStore } from '../src/store/db.js';
import { timePerOp, type BenchRow } from './sigv4.js';

function row(name: string, us: number, detail: string): BenchRow {
  return { name, value: us, unit: 'µs/op', detail, markdown: `| ${name} | ${us.toFixed(2)} µs/op | ${detail} |` };
}

export function runStoreBench(): BenchRow[] {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'keygate-bench-store-'));
  const masterKey = Buffer.alloc(32, 0x42);
  const store = openStore(
    loadConfig({ KEYGATE_DATA_DIR: dataDir, KEYGATE_MASTER_KEY: masterKey.toString('hex'), KEYGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef' }),
  );
  try {
    store.buckets.add({ name: 'photos' });
    const key = store.keys.create({ name: 'bench', bucket: 'photos', preset: 'read-write' });
    for (let i = 0; i < 200; i++) store.keys.create({ name: `other-${i}`, preset: 'read-only' });
    const rows: BenchRow[] = [];
    const lookup = timePerOp(() => store.keys.findWithSecret(key.accessKeyId));
    rows.push(row('key lookup for verification (row + secret reused while data_version is unchanged)', lookup, 'one PRAGMA data_version per request'));
    // The same row query the repository makes, plus opening a secret sealed the way it is stored.
    const sealed = sealSecret(masterKey, key.accessKeyId, key.secretAccessKey);
    const uncached = timePerOp(() => {
      store.keys.get(key.accessKeyId);
      unsealSecret(masterKey, key.accessKeyId, sealed);
    });
    rows.push(row('  for comparison: key query + AES-GCM unseal on every request', uncached, 'what the lookup cost before the cache'));
    rows.push(
      row(
        'bucket lookup for routing (row reused while data_version is unchanged)',
        timePerOp(() => store.buckets.get('photos')),
        'one PRAGMA data_version per request',
      ),
    );
    return rows;
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
