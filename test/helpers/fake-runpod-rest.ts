/**
 * A local fake of RunPod's REST API for network volumes, v2 and v1 shapes side by side:
 *
 *   v2: GET|POST /v2/network-volumes, DELETE /v2/network-volumes/{id}   ({"name","size","dataCenter"})
 *   v1: GET|POST /v1/networkvolumes,  DELETE /v1/networkvolumes/{id}    ({"name","size","dataCenterId"})
 *
 * Every call is recorded (method, path, headers, Authorization, parsed JSON body). Creating a volume
 * also creates its bucket (named by the volume id) on the test S3 server standing in for that
 * datacenter's S3 API, so a bucket the gateway creates really works; deleting a volume deletes
 * that bucket. Answers can be replaced call by call (`failNext`) to play RunPod's failures, and a
 * DELETE can be held (`onDeleting`) to look at the gateway while its delete is under way.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { TestUpstream } from './upstreams.js';

export interface RecordedRestCall {
  method: string;
  /** Path and query as requested, e.g. /v2/network-volumes/abc. */
  path: string;
  authorization: string | undefined;
  headers: IncomingHttpHeaders;
  /** The JSON body parsed, null when there was none (or it was not JSON). */
  body: unknown;
  rawBody: string;
}

export interface FakeVolume {
  id: string;
  name: string;
  size: number;
  dataCenterId: string;
}

export interface FakeAnswer {
  status: number;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is (instead of json). */
  raw?: string;
  headers?: Record<string, string>;
  /** Never answer (the connection stays open until the server stops). */
  hang?: boolean;
  /** For a POST: create the volume anyway before answering (RunPod failing after it acted). */
  createAnyway?: boolean;
  /** For a DELETE: delete the volume anyway before answering. */
  deleteAnyway?: boolean;
}

export interface FakeRunpodRest {
  /** Origin, e.g. http://127.0.0.1:41234; the API bases are `${url}/v2` and `${url}/v1`. */
  url: string;
  apiKey: string;
  calls: RecordedRestCall[];
  volumes: Map<string, FakeVolume>;
  /** The next call with this method gets `answer` instead of the fake's own. */
  failNext(method: string, answer: FakeAnswer): void;
  /** Runs when a volume was created, before the answer is sent. */
  onCreated: ((volume: FakeVolume) => Promise<void> | void) | null;
  /** Runs when a DELETE arrives (its volume id), before anything is deleted or answered, failNext answers included. */
  onDeleting: ((volumeId: string) => Promise<void> | void) | null;
  /** Calls other than the volume listing (which routing may make at any time). */
  changes(): RecordedRestCall[];
  stop(): Promise<void>;
}

export async function startFakeRunpodRest(options: { apiKey: string; datacenters: Record<string, Pick<TestUpstream, 'request'>> }): Promise<FakeRunpodRest> {
  const calls: RecordedRestCall[] = [];
  const volumes = new Map<string, FakeVolume>();
  const planned: Array<{ method: string; answer: FakeAnswer }> = [];
  const hanging = new Set<ServerResponse>();

  const createVolume = async (name: string, size: number, dataCenterId: string): Promise<FakeVolume> => {
    const volume = { id: `kgv${randomBytes(5).toString('hex')}`, name, size, dataCenterId };
    const s3 = options.datacenters[dataCenterId]!;
    const created = await s3.request('PUT', `/${volume.id}`);
    if (created.status !== 200) throw new Error(`fake RunPod: creating bucket ${volume.id} failed: ${created.status} ${created.body.toString()}`);
    volumes.set(volume.id, volume);
    await fake.onCreated?.(volume);
    return volume;
  };
  const deleteVolume = async (volume: FakeVolume): Promise<void> => {
    const deleted = await options.datacenters[volume.dataCenterId]!.request('DELETE', `/${volume.id}`);
    if (deleted.status !== 204) throw new Error(`fake RunPod: deleting bucket ${volume.id} failed: ${deleted.status} ${deleted.body.toString()}`);
    volumes.delete(volume.id);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const rawBody = Buffer.concat(chunks).toString('utf8');
        let body: unknown = null;
        try {
          body = rawBody === '' ? null : JSON.parse(rawBody);
        } catch {
          body = null;
        }
        const method = req.method ?? 'GET';
        const path = req.url ?? '/';
        calls.push({ method, path, authorization: req.headers.authorization, headers: req.headers, body, rawBody });
        if (method === 'DELETE') await fake.onDeleting?.(decodeURIComponent(path.split('/').pop() ?? ''));
        const send = (answer: FakeAnswer) => {
          if (answer.hang) {
            hanging.add(res);
            return;
          }
          const text = answer.raw ?? (answer.json === undefined ? '' : JSON.stringify(answer.json));
          res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
          res.end(text);
        };
        const v1 = path.startsWith('/v1/');
        const collection = v1 ? '/v1/networkvolumes' : '/v2/network-volumes';
        const describe = (volume: FakeVolume) =>
          v1
            ? { id: volume.id, name: volume.name, size: volume.size, dataCenterId: volume.dataCenterId }
            : { id: volume.id, name: volume.name, size: volume.size, dataCenter: volume.dataCenterId, type: 'STANDARD' };

        const index = planned.findIndex((entry) => entry.method === method);
        if (index !== -1) {
          const { answer } = planned.splice(index, 1)[0]!;
          const input = body as { name?: string; size?: number; dataCenter?: string; dataCenterId?: string } | null;
          if (answer.createAnyway && input) await createVolume(input.name ?? 'x', input.size ?? 10, (input.dataCenter ?? input.dataCenterId)!);
          if (answer.deleteAnyway) {
            const volume = volumes.get(decodeURIComponent(path.split('/').pop() ?? ''));
            if (volume) await deleteVolume(volume);
          }
          send(answer);
          return;
        }
        if (req.headers.authorization !== `Bearer ${options.apiKey}`) {
          // RunPod-like, and echoing the key it got: the gateway must never relay it.
          send({ status: 401, json: { error: `invalid api key ${String(req.headers.authorization).replace(/^Bearer /, '')}` } });
          return;
        }
        if (path === collection && method === 'GET') {
          const items = [...volumes.values()].map(describe);
          send({ status: 200, json: v1 ? items : { networkVolumes: items } });
          return;
        }
        if (path === collection && method === 'POST') {
          const input = (body ?? {}) as Record<string, unknown>;
          const dataCenter = input[v1 ? 'dataCenterId' : 'dataCenter'];
          if (typeof input.name !== 'string' || input.name === '') return send({ status: 400, json: { error: 'name is required' } });
          if (typeof input.size !== 'number' || !Number.isInteger(input.size) || input.size < 1 || input.size > 4096) {
            return send({ status: 400, json: { error: 'size must be an integer from 1 to 4096' } });
          }
          if (typeof dataCenter !== 'string' || options.datacenters[dataCenter] === undefined) {
            return send({ status: 400, json: { error: `invalid data center id: ${String(dataCenter)}` } });
          }
          const volume = await createVolume(input.name, input.size, dataCenter);
          send({ status: v1 ? 200 : 201, json: describe(volume) });
          return;
        }
        if (path.startsWith(`${collection}/`) && method === 'DELETE') {
          const volume = volumes.get(decodeURIComponent(path.slice(collection.length + 1)));
          if (volume === undefined) return send({ status: 404, json: { error: 'network volume not found' } });
          await deleteVolume(volume);
          send({ status: 204 });
          return;
        }
        send({ status: 404, json: { error: 'not found' } });
      })().catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`fake RunPod failed: ${String(error)}`);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const fake: FakeRunpodRest = {
    url: `http://127.0.0.1:${port}`,
    apiKey: options.apiKey,
    calls,
    volumes,
    onCreated: null,
    onDeleting: null,
    failNext: (method, answer) => void planned.push({ method, answer }),
    changes: () => calls.filter((call) => call.method !== 'GET'),
    async stop() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
