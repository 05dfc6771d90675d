/**
 * README's "Compatibility" table, checked against a running gateway: every operation of
 * src/s3/operations.ts has exactly one row; its "Key needs" cell is the entry's permission; and a
 * representative request, sent with a key holding every flag to a RunPod bucket and to a generic S3
 * bucket (both served by one capturing upstream), does what the cell says:
 *
 * - `forwarded`: the upstream received that operation (method, path, sub-resource) and the client
 *   got the upstream's success;
 * - `gateway`: the gateway answered or carried it out itself (each such operation has a check below
 *   of what it does instead of forwarding);
 * - `501`: NotImplemented, and nothing reached the upstream.
 *
 * The headers and sub-resources the README lists under the table are checked the same way.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATIONS, UNSUPPORTED_SUBRESOURCES, type OperationName, type OperationSpec } from '../../src/s3/operations.js';
import { startCapturingUpstream, type CapturedRequest, type CapturingUpstream } from '../helpers/capturing-upstream.js';
import { REPO_ROOT, startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { multipartForm, signPolicy } from '../helpers/post-forms.js';
import { errorCode, exchange, type RawResponse } from '../helpers/raw-http.js';
import { signedHeaders } from '../helpers/sign.js';

const RUNPOD_BUCKET = 'vol0compat1';
const GENERIC_BUCKET = 'generic-compat';
/** Listed by the default upstream only: ListBuckets shows it because the gateway asked the upstream. */
const UPSTREAM_ONLY_BUCKET = 'listed-by-upstream';
const OBJECT_KEY = 'docs/object.txt';
const COPY_SOURCE_KEY = 'docs/source.txt';

type Column = 'RunPod' | 'Generic S3 upstream';
type Behaviour = 'forwarded' | 'gateway' | '501';

interface Row {
  operation: OperationName;
  keyNeeds: string;
  cells: Record<Column, Behaviour>;
  text: string;
}

// ---------------------------------------------------------------------------------------------
// The table

const README = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

function compatibilitySection(): string {
  const start = README.indexOf('## Compatibility');
  const end = README.indexOf('\n## ', start + 1);
  expect(start, 'README has a "## Compatibility" section').toBeGreaterThanOrEqual(0);
  return README.slice(start, end === -1 ? undefined : end);
}

function behaviourOf(cell: string, where: string): Behaviour {
  const first = /^(forwarded|gateway|501)\b/.exec(cell.trim())?.[1];
  if (first === undefined) throw new Error(`${where}: a cell must start with forwarded, gateway or 501, not "${cell}"`);
  return first as Behaviour;
}

function readTable(): Row[] {
  const section = compatibilitySection();
  const table = /<!-- compatibility-table:start -->\n([\s\S]*?)<!-- compatibility-table:end -->/.exec(section)?.[1];
  if (table === undefined) throw new Error('README "Compatibility" has no table between its markers');
  const lines = table.trim().split('\n');
  const header = lines[0]!.split('|').map((cell) => cell.trim());
  expect(header.slice(1, 5)).toEqual(['Operation', 'Key needs', 'RunPod', 'Generic S3 upstream']);
  return lines.slice(2).map((line) => {
    const cells = line.split('|').map((cell) => cell.trim());
    const operation = /^`([A-Za-z0-9]+)`/.exec(cells[1]!)?.[1];
    if (operation === undefined || !(operation in OPERATIONS)) throw new Error(`README row names no operation of the table: ${line}`);
    return {
      operation: operation as OperationName,
      keyNeeds: cells[2]!,
      cells: { RunPod: behaviourOf(cells[3]!, `${operation} on RunPod`), 'Generic S3 upstream': behaviourOf(cells[4]!, `${operation} on generic S3`) },
      text: line,
    };
  });
}

const ROWS = readTable();

// ---------------------------------------------------------------------------------------------
// Representative requests

interface Sample {
  method: string;
  /** Path and query as sent, e.g. `/bucket/key?tagging`. */
  target: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** A POST Object form (signed by the test): the file's bytes. */
  formFile?: Buffer;
}

const DOCUMENTS = {
  tagging: '<Tagging><TagSet><Tag><Key>team</Key><Value>ml</Value></Tag></TagSet></Tagging>',
  retention: '<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>',
  legalHold: '<LegalHold><Status>ON</Status></LegalHold>',
  lockConfiguration: '<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>',
  acl: '<AccessControlPolicy><Owner><ID>o</ID></Owner><AccessControlList/></AccessControlPolicy>',
};

const md5 = (body: Buffer) => createHash('md5').update(body).digest('base64');
const xmlBody = (text: string): Pick<Sample, 'body' | 'headers'> => {
  const body = Buffer.from(text);
  return { body, headers: { 'content-md5': md5(body), 'content-type': 'application/xml' } };
};
const encodeKey = (key: string) => key.split('/').map(encodeURIComponent).join('/');

/** One request per operation; `uploadId` is a gateway upload id for the bucket's OBJECT_KEY. */
function sampleFor(operation: OperationName, bucket: string, uploadId: string): Sample {
  const object = `/${bucket}/${encodeKey(OBJECT_KEY)}`;
  const upload = `uploadId=${encodeURIComponent(uploadId)}`;
  const copySource = { 'x-amz-copy-source': `/${bucket}/${encodeKey(COPY_SOURCE_KEY)}` };
  switch (operation) {
    case 'ListBuckets':
      return { method: 'GET', target: '/' };
    case 'HeadBucket':
      return { method: 'HEAD', target: `/${bucket}` };
    case 'GetBucketLocation':
      return { method: 'GET', target: `/${bucket}?location` };
    case 'ListObjects':
      return { method: 'GET', target: `/${bucket}?prefix=docs%2F` };
    case 'ListObjectsV2':
      return { method: 'GET', target: `/${bucket}?list-type=2&prefix=docs%2F` };
    case 'ListObjectVersions':
      return { method: 'GET', target: `/${bucket}?versions` };
    case 'ListMultipartUploads':
      return { method: 'GET', target: `/${bucket}?uploads` };
    case 'CreateBucket':
      return { method: 'PUT', target: `/${bucket}` };
    case 'DeleteBucket':
      return { method: 'DELETE', target: `/${bucket}` };
    case 'GetBucketConfiguration':
      return { method: 'GET', target: `/${bucket}?policy` };
    case 'PutBucketConfiguration':
      return { method: 'PUT', target: `/${bucket}?tagging`, ...xmlBody(DOCUMENTS.tagging) };
    case 'DeleteBucketConfiguration':
      return { method: 'DELETE', target: `/${bucket}?cors` };
    case 'GetObjectLockConfiguration':
      return { method: 'GET', target: `/${bucket}?object-lock` };
    case 'PutObjectLockConfiguration':
      return { method: 'PUT', target: `/${bucket}?object-lock`, ...xmlBody(DOCUMENTS.lockConfiguration) };
    case 'DeleteObjects':
      return {
        method: 'POST',
        target: `/${bucket}?delete`,
        ...xmlBody(`<Delete><Object><Key>${OBJECT_KEY}</Key></Object><Object><Key>${COPY_SOURCE_KEY}</Key></Object></Delete>`),
      };
    case 'PostObject':
      return { method: 'POST', target: `/${bucket}`, formFile: Buffer.from('form bytes') };
    case 'GetObject':
      return { method: 'GET', target: object };
    case 'HeadObject':
      return { method: 'HEAD', target: object };
    case 'GetObjectAttributes':
      return { method: 'GET', target: `${object}?attributes`, headers: { 'x-amz-object-attributes': 'ETag,ObjectSize' } };
    case 'GetObjectTagging':
      return { method: 'GET', target: `${object}?tagging` };
    case 'GetObjectAcl':
      return { method: 'GET', target: `${object}?acl` };
    case 'GetObjectRetention':
      return { method: 'GET', target: `${object}?retention` };
    case 'GetObjectLegalHold':
      return { method: 'GET', target: `${object}?legal-hold` };
    case 'ListParts':
      return { method: 'GET', target: `${object}?${upload}` };
    case 'PutObject':
      return { method: 'PUT', target: object, body: Buffer.from('object bytes') };
    case 'CopyObject':
      return { method: 'PUT', target: object, headers: copySource };
    case 'PutObjectTagging':
      return { method: 'PUT', target: `${object}?tagging`, ...xmlBody(DOCUMENTS.tagging) };
    case 'DeleteObjectTagging':
      return { method: 'DELETE', target: `${object}?tagging` };
    case 'PutObjectAcl':
      return { method: 'PUT', target: `${object}?acl`, ...xmlBody(DOCUMENTS.acl) };
    case 'PutObjectRetention':
      return { method: 'PUT', target: `${object}?retention`, ...xmlBody(DOCUMENTS.retention) };
    case 'PutObjectLegalHold':
      return { method: 'PUT', target: `${object}?legal-hold`, ...xmlBody(DOCUMENTS.legalHold) };
    case 'CreateMultipartUpload':
      return { method: 'POST', target: `${object}?uploads` };
    case 'UploadPart':
      return { method: 'PUT', target: `${object}?partNumber=1&${upload}`, body: Buffer.from('part bytes') };
    case 'UploadPartCopy':
      return { method: 'PUT', target: `${object}?partNumber=1&${upload}`, headers: copySource };
    case 'CompleteMultipartUpload':
      return {
        method: 'POST',
        target: `${object}?${upload}`,
        ...xmlBody('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"0123456789abcdef0123456789abcdef"</ETag></Part></CompleteMultipartUpload>'),
      };
    case 'AbortMultipartUpload':
      return { method: 'DELETE', target: `${object}?${upload}` };
    case 'DeleteObject':
      return { method: 'DELETE', target: object };
  }
}

const NEEDS_UPLOAD: ReadonlySet<OperationName> = new Set(['ListParts', 'UploadPart', 'UploadPartCopy', 'CompleteMultipartUpload', 'AbortMultipartUpload']);

// ---------------------------------------------------------------------------------------------
// The gateway

let upstream: CapturingUpstream;
let gateway: Gateway;
let key: CreatedKey;
let host: string;
let port: number;

beforeAll(async () => {
  upstream = await startCapturingUpstream();
  upstream.buckets = [UPSTREAM_ONLY_BUCKET];
  // Copies need a copy result document, which the capturing upstream's plain PUT answer lacks.
  upstream.answerWith = (request, res) => {
    if (request.method !== 'PUT' || request.headers['x-amz-copy-source'] === undefined) return false;
    const element = request.query.some(([name]) => name === 'uploadId') ? 'CopyPartResult' : 'CopyObjectResult';
    const body = `<${element}><ETag>"0123456789abcdef0123456789abcdef"</ETag><LastModified>2024-01-01T00:00:00.000Z</LastModified></${element}>`;
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
    return true;
  };
  gateway = await startGateway({
    ...upstreamEnv({ endpoint: upstream.endpoint, region: 'us-east-1', accessKeyId: 'UPSTREAMKEY', secretAccessKey: 'upstream-secret' }),
    KEYGATE_RUNPOD_ENDPOINTS: JSON.stringify({ 'EU-RO-1': upstream.endpoint }),
    RUNPOD_S3_ACCESS_KEY: 'RUNPODKEY',
    RUNPOD_S3_SECRET_KEY: 'runpod-secret',
    KEYGATE_ACCESS_LOG: 'off',
  });
  await gateway.addBucket({ name: RUNPOD_BUCKET, datacenter: 'EU-RO-1' });
  await gateway.addBucket({ name: GENERIC_BUCKET, endpoint: upstream.endpoint, region: 'us-east-1' });
  key = await gateway.createKey({ name: 'compatibility', permissions: ['read', 'write', 'delete', 'admin'] });
  port = Number(new URL(gateway.url).port);
  host = `127.0.0.1:${port}`;
});

afterAll(async () => {
  await gateway?.stop();
  await upstream?.stop();
});

interface Outcome {
  response: RawResponse;
  /** What reached the upstream for this request. */
  upstreamRequests: CapturedRequest[];
}

async function send(sample: Sample): Promise<Outcome> {
  const before = upstream.requests.length;
  const signing = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: key.region };
  let response: RawResponse;
  if (sample.formFile !== undefined) {
    const bucket = sample.target.slice(1);
    const form = multipartForm([
      { name: 'key', value: OBJECT_KEY },
      ...Object.entries(signPolicy(signing, [{ bucket }, ['eq', '$key', OBJECT_KEY]])).map(([name, value]) => ({ name, value })),
      { name: 'file', value: sample.formFile, filename: 'f.txt', contentType: 'text/plain' },
    ]);
    response = await exchange(port, {
      method: 'POST',
      target: sample.target,
      headers: [
        ['Host', host],
        ['Content-Type', form.contentType],
        ['Content-Length', String(form.body.length)],
        ['Connection', 'close'],
      ],
      body: form.body,
    });
  } else {
    const body = sample.body ?? Buffer.alloc(0);
    const signed = signedHeaders(signing, host, sample.method, sample.target, { body: sample.body, headers: sample.headers });
    response = await exchange(port, {
      method: sample.method,
      target: sample.target,
      headers: [...Object.entries(signed).map(([name, value]): [string, string] => [name, String(value)]), ['Connection', 'close']],
      body,
    });
  }
  const upstreamRequests = upstream.requests.slice(before);
  await Promise.all(upstreamRequests.map((request) => request.settled));
  return { response, upstreamRequests };
}

async function startUpload(bucket: string): Promise<string> {
  const { response } = await send({ method: 'POST', target: `/${bucket}/${encodeKey(OBJECT_KEY)}?uploads` });
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(response.body)?.[1];
  expect(response.status, response.body).toBe(200);
  return uploadId!;
}

// ---------------------------------------------------------------------------------------------
// What each behaviour means

/** Whether an upstream request is the operation forwarded: its method, path and sub-resource (or first parameter). */
function isForwardedCopy(operation: OperationName, sample: Sample, request: CapturedRequest): boolean {
  const spec: OperationSpec = OPERATIONS[operation];
  const [samplePath, sampleQuery = ''] = sample.target.split('?') as [string, string?];
  const marker = spec.subresource ?? /^[a-z-]+/i.exec(sampleQuery)?.[0];
  const markerSent = marker === undefined || request.query.some(([name]) => name === marker);
  return request.method === (spec.upstreamMethod ?? sample.method) && request.rawPath === samplePath && markerSent;
}

/** The check of each operation the gateway carries out itself (cells saying `gateway`). */
const GATEWAY_CHECKS: Partial<Record<OperationName, (outcome: Outcome, column: Column) => void>> = {
  ListBuckets: ({ response, upstreamRequests }, column) => {
    expect(response.status).toBe(200);
    expect(response.body).toContain(`<Name>${RUNPOD_BUCKET}</Name>`);
    expect(response.body).toContain(`<Name>${GENERIC_BUCKET}</Name>`);
    if (column === 'Generic S3 upstream') {
      // The default upstream's own buckets, asked for with a ListBuckets of the gateway's.
      expect(response.body).toContain(`<Name>${UPSTREAM_ONLY_BUCKET}</Name>`);
      expect(upstreamRequests.some((request) => request.method === 'GET' && request.rawPath === '/')).toBe(true);
    }
  },
  GetBucketLocation: ({ response, upstreamRequests }) => {
    expect(response.status).toBe(200);
    expect(response.body).toContain('LocationConstraint');
    expect(upstreamRequests).toEqual([]);
  },
  DeleteObjects: ({ response, upstreamRequests }) => {
    expect(response.status).toBe(200);
    expect(response.body).toContain(`<Deleted><Key>${OBJECT_KEY}</Key></Deleted>`);
    expect(upstreamRequests.map((request) => request.method).sort()).toEqual(['DELETE', 'DELETE']);
    expect(upstreamRequests.some((request) => request.query.some(([name]) => name === 'delete'))).toBe(false);
  },
  PostObject: ({ response, upstreamRequests }) => {
    expect(response.status).toBe(204);
    expect(upstreamRequests).toHaveLength(1);
    expect(upstreamRequests[0]!.method).toBe('PUT');
    expect(upstreamRequests[0]!.body.toString()).toBe('form bytes');
  },
};

function bucketOf(column: Column): string {
  return column === 'RunPod' ? RUNPOD_BUCKET : GENERIC_BUCKET;
}

// ---------------------------------------------------------------------------------------------

describe('README "Compatibility" table', () => {
  it('has one row per operation of the operations table', () => {
    const named = ROWS.map((row) => row.operation);
    expect([...named].sort()).toEqual(Object.keys(OPERATIONS).sort());
    expect(new Set(named).size).toBe(named.length);
  });

  it('names the permission each operation needs', () => {
    for (const row of ROWS) expect(row.keyNeeds.split(' ')[0], row.text).toBe(OPERATIONS[row.operation].permission);
  });

  for (const row of ROWS) {
    for (const column of ['RunPod', 'Generic S3 upstream'] as const) {
      const behaviour = row.cells[column];
      it(`${row.operation} on ${column}: ${behaviour}`, async () => {
        const bucket = bucketOf(column);
        const uploadId = NEEDS_UPLOAD.has(row.operation) ? await startUpload(bucket) : '';
        const sample = sampleFor(row.operation, bucket, uploadId);
        const outcome = await send(sample);
        const { response, upstreamRequests } = outcome;
        const where = `${sample.method} ${sample.target} -> ${response.status} ${response.body}`;
        switch (behaviour) {
          case '501':
            expect(response.status, where).toBe(501);
            expect(errorCode(response), where).toBe('NotImplemented');
            expect(upstreamRequests, where).toEqual([]);
            break;
          case 'forwarded':
            expect(response.status, where).toBeLessThan(300);
            expect(
              upstreamRequests.some((request) => isForwardedCopy(row.operation, sample, request)),
              `${where}: upstream saw ${upstreamRequests.map((r) => `${r.method} ${r.rawPath}?${r.rawQuery}`).join(', ')}`,
            ).toBe(true);
            break;
          case 'gateway': {
            const check = GATEWAY_CHECKS[row.operation];
            if (check === undefined) throw new Error(`${row.operation}: the README says "gateway" but this test knows no gateway behaviour for it`);
            check(outcome, column);
            break;
          }
        }
      });
    }
  }
});

describe('README "Compatibility": headers and sub-resources', () => {
  const section = compatibilitySection();
  const object = (bucket: string) => `/${bucket}/${encodeKey(OBJECT_KEY)}`;
  const CAPABILITY_HEADERS: Array<{ header: string; value: string; sample: (bucket: string) => Sample }> = [
    { header: 'x-amz-tagging', value: 'team=ml', sample: (b) => ({ method: 'PUT', target: object(b), body: Buffer.from('x') }) },
    { header: 'x-amz-object-lock-mode', value: 'GOVERNANCE', sample: (b) => ({ method: 'PUT', target: object(b), body: Buffer.from('x') }) },
    {
      header: 'x-amz-object-lock-retain-until-date',
      value: '2030-01-01T00:00:00Z',
      sample: (b) => ({ method: 'PUT', target: object(b), body: Buffer.from('x') }),
    },
    { header: 'x-amz-object-lock-legal-hold', value: 'ON', sample: (b) => ({ method: 'POST', target: `${object(b)}?uploads` }) },
    { header: 'x-amz-bypass-governance-retention', value: 'true', sample: (b) => ({ method: 'DELETE', target: object(b) }) },
    {
      header: 'x-amz-grant-read',
      value: 'uri="http://acs.amazonaws.com/groups/global/AllUsers"',
      sample: (b) => ({ method: 'PUT', target: object(b), body: Buffer.from('x') }),
    },
  ];

  for (const { header, value, sample } of CAPABILITY_HEADERS) {
    it(`${header} answers 501 on RunPod and is forwarded to a generic S3 upstream`, async () => {
      expect(section).toContain(`\`${header}`);
      const runpod = await send({ ...sample(RUNPOD_BUCKET), headers: { [header]: value } });
      expect(runpod.response.status, runpod.response.body).toBe(501);
      expect(errorCode(runpod.response)).toBe('NotImplemented');
      expect(runpod.upstreamRequests).toEqual([]);
      const generic = await send({ ...sample(GENERIC_BUCKET), headers: { [header]: value } });
      expect(generic.response.status, generic.response.body).toBeLessThan(300);
      expect(generic.upstreamRequests.map((request) => request.headers[header]?.[0])).toContain(value);
    });
  }

  it('a private ACL header is S3 default: dropped, and the request goes through on RunPod', async () => {
    for (const acl of ['private', 'bucket-owner-full-control']) {
      expect(section).toContain(`\`${acl}\``);
      const outcome = await send({ method: 'PUT', target: object(RUNPOD_BUCKET), body: Buffer.from('x'), headers: { 'x-amz-acl': acl } });
      expect(outcome.response.status, outcome.response.body).toBe(200);
      expect(outcome.upstreamRequests).toHaveLength(1);
      expect(outcome.upstreamRequests[0]!.headers['x-amz-acl']).toBeUndefined();
    }
  });

  for (const subresource of UNSUPPORTED_SUBRESOURCES) {
    it(`?${subresource} answers 501 on both upstreams`, async () => {
      expect(section).toContain(`\`${subresource}\``);
      for (const bucket of [RUNPOD_BUCKET, GENERIC_BUCKET]) {
        const outcome = await send({ method: 'GET', target: `${object(bucket)}?${subresource}` });
        expect(outcome.response.status, outcome.response.body).toBe(501);
        expect(errorCode(outcome.response)).toBe('NotImplemented');
        expect(outcome.upstreamRequests).toEqual([]);
      }
    });
  }

  it('PutObject and UploadPart over 500 MB answer EntityTooLarge on RunPod before the body is sent', async () => {
    const uploadId = await startUpload(RUNPOD_BUCKET);
    for (const target of [object(RUNPOD_BUCKET), `${object(RUNPOD_BUCKET)}?partNumber=1&uploadId=${encodeURIComponent(uploadId)}`]) {
      const before = upstream.requests.length;
      const signing = { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: key.region };
      const signed = signedHeaders(signing, host, 'PUT', target, { headers: { 'content-length': '600000000', expect: '100-continue' } });
      const response = await exchange(port, {
        method: 'PUT',
        target,
        headers: Object.entries(signed).map(([name, value]): [string, string] => [name, String(value)]),
      });
      expect(response.status, response.body).toBe(400);
      expect(errorCode(response)).toBe('EntityTooLarge');
      expect(upstream.requests.length).toBe(before);
    }
  });

  it('a request no entry describes is AccessDenied, not NotImplemented', async () => {
    for (const bucket of [RUNPOD_BUCKET, GENERIC_BUCKET]) {
      const outcome = await send({ method: 'PATCH', target: object(bucket), body: Buffer.from('x') });
      expect(outcome.response.status, outcome.response.body).toBe(403);
      expect(errorCode(outcome.response)).toBe('AccessDenied');
      expect(outcome.upstreamRequests).toEqual([]);
    }
  });
});
