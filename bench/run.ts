/**
 * `npm run bench`: per-request costs of the gateway's own work, measured in one run and printed as
 * a markdown table (also written to .bench/report.md). Numbers are for this machine only; compare
 * rows of one run with each other, not with other machines.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { authorize } from '../src/authz.js';
import type { AccessKey } from '../src/keys/model.js';
import { parseAddress } from '../src/s3/address.js';
import { classify } from '../src/s3/operations.js';
import { runSigv4Bench, type BenchRow } from './sigv4.js';

function timePerOpUs(fn: () => void, minMs = 500): number {
  for (let i = 0; i < 2000; i++) fn();
  let ops = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs * 1e6) {
    for (let i = 0; i < 1000; i++) fn();
    ops += 1000;
    elapsed = Number(process.hrtime.bigint() - start);
  }
  return elapsed / 1000 / ops;
}

function authzRow(): BenchRow {
  const key: AccessKey = {
    accessKeyId: 'rs_ak_live_0000000000000000000000000000000000000000',
    name: 'bench',
    kind: 'bucket',
    bucket: 'photos',
    permissions: ['read', 'write'],
    expiresAt: null,
    createdAt: new Date(),
    lastUsedAt: null,
  };
  const headers = { host: 'localhost:9000' };
  const us = timePerOpUs(() => {
    const address = parseAddress('/photos/2025/03/holiday%20%E2%9C%93.jpg?partNumber=3&uploadId=abc', headers.host, null);
    authorize(key, classify('PUT', address, headers));
  });
  const name = 'address parse + classify + authorize (UploadPart)';
  return { name, value: us, unit: 'µs/op', detail: `${Math.round(1000 / us)}k ops/s`, markdown: `| ${name} | ${us.toFixed(2)} µs/op | ${Math.round(1000 / us)}k ops/s |` };
}

const rows = [...(await runSigv4Bench()), authzRow()];
const report = [
  `# keygate benchmark (${new Date().toISOString()}, node ${process.version})`,
  '',
  '| measurement | result | detail |',
  '|---|---|---|',
  ...rows.map((row) => row.markdown),
  '',
].join('\n');
mkdirSync('.bench', { recursive: true });
writeFileSync('.bench/report.md', report);
process.stdout.write(report);
