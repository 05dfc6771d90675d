/**
 * A fault-injecting HTTP proxy placed on the wire between the gateway and a real S3 upstream.
 * By default it passes every request through unchanged (same request target, raw headers and body,
 * so the upstream's SigV4 check still sees what the gateway signed); a rule can make it fail a
 * request the way real upstreams and the networks in front of them do: answer a 5xx itself, hold
 * the response back, stall or reset in the middle of a body. It records what it saw, so tests can
 * count retries and check that the gateway gave connections up.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';

export type Fault =
  /** Answer with this status without contacting the upstream (after reading the request body). */
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  /** Forward the request, but hold the upstream's response back this long (Infinity = never answer). */
  | { kind: 'delay-headers'; ms: number }
  /** Forward; send the response headers and the first `afterBytes` body bytes, then nothing more. */
  | { kind: 'stall-response'; afterBytes: number }
  /** Forward; send the response headers and the first `afterBytes` body bytes, then reset the connection. */
  | { kind: 'reset-response'; afterBytes: number }
  /** Forward the request body until `afterBytes` went upstream, then cut both connections (RST to the gateway). */
  | { kind: 'reset-request'; afterBytes: number }
  /** Forward the request body until `afterBytes` went upstream, then stop reading it and never answer. */
  | { kind: 'stall-request'; afterBytes: number };

export interface ProxiedRequest {
  method: string;
  url: string;
  /** The fault applied, or 'pass'. */
  fault: Fault['kind'] | 'pass';
  /** Request body bytes received from the gateway. */
  bodyBytes: number;
  /** The gateway sent the whole request body. */
  requestComplete: boolean;
  /** The response was sent completely (false: cut by the fault, or the gateway went away first). */
  responseFinished: boolean;
  /** The gateway closed the connection before the response was finished. */
  closedByGateway: boolean;
}

export type FaultRule = (request: { method: string; url: string; index: number }) => Fault | null;

export interface FaultProxy {
  url: string;
  port: number;
  requests: ProxiedRequest[];
  /** Applies `rule` to every following request (null: pass everything through). */
  setRule(rule: FaultRule | null): void;
  /** Connections from the gateway currently open (a stalled one only notices the gateway left once dropped). */
  openConnections(): number;
  /** Closes every connection from the gateway (e.g. ones a stall fault left paused). */
  dropConnections(): void;
  close(): Promise<void>;
}

/** Hop-by-hop headers are the proxy's own business on each leg. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection']);

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let rule: FaultRule | null = null;
  const upstreamAgent = new http.Agent({ keepAlive: false });

  const later = (ms: number, fn: () => void) => {
    if (!Number.isFinite(ms)) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const fault = rule?.({ method: req.method ?? '', url: req.url ?? '', index: requests.length }) ?? null;
    const record: ProxiedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      fault: fault?.kind ?? 'pass',
      bodyBytes: 0,
      requestComplete: false,
      responseFinished: false,
      closedByGateway: false,
    };
    requests.push(record);
    // Set when the fault itself cut the exchange, so closedByGateway only blames the gateway.
    let faultCutIt = false;
    req.on('data', (chunk: Buffer) => (record.bodyBytes += chunk.length));
    req.on('end', () => (record.requestComplete = true));
    res.on('finish', () => (record.responseFinished = true));
    res.on('close', () => {
      if (!res.writableFinished && !faultCutIt) record.closedByGateway = true;
    });

    if (fault?.kind === 'status') {
      req.resume();
      req.on('end', () => {
        const body = Buffer.from(fault.body ?? '');
        res.writeHead(fault.status, { 'content-length': String(body.length), ...fault.headers });
        res.end(body);
      });
      return;
    }

    const outgoing = http.request({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: endToEndHeaders(req.rawHeaders),
      agent: upstreamAgent,
    });
    outgoing.on('error', () => res.destroy());
    // The gateway gave the exchange up (mid-request or mid-response): so does the proxy, as the TCP connection would.
    req.on('close', () => {
      if (!record.requestComplete) outgoing.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) outgoing.destroy();
    });

    if (fault?.kind === 'reset-request' || fault?.kind === 'stall-request') {
      passFirstBytes(req, outgoing, fault.afterBytes, () => {
        faultCutIt = true;
        if (fault.kind === 'reset-request') {
          outgoing.destroy();
          req.socket.resetAndDestroy();
        } else {
          req.pause();
        }
      });
    } else {
      req.pipe(outgoing);
    }

    outgoing.on('response', (incoming) => {
      const respond = () => {
        if (res.destroyed) return incoming.destroy();
        res.writeHead(incoming.statusCode ?? 502, endToEndHeaders(incoming.rawHeaders));
        if (fault?.kind !== 'stall-response' && fault?.kind !== 'reset-response') {
          incoming.pipe(res);
          return;
        }
        passFirstBytes(incoming, res, fault.afterBytes, () => {
          faultCutIt = true;
          incoming.destroy();
          // Let the bytes reach the gateway first, then cut (reset) or fall silent (stall).
          if (fault.kind === 'reset-response') later(50, () => res.socket?.resetAndDestroy());
        });
      };
      if (fault?.kind === 'delay-headers') later(fault.ms, respond);
      else respond();
    });
  });
  // Idle keep-alive connections from the gateway close soon, so leak checks need not wait long.
  server.keepAliveTimeout = 1500;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // The gateway closed its side: nothing it could still want from this connection.
    socket.on('end', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setRule(next) {
      rule = next;
    },
    openConnections: () => sockets.size,
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      upstreamAgent.destroy();
      await closed;
    },
  };
}

/** Raw header pairs without the hop-by-hop ones (the proxy has connections of its own on each side). */
function endToEndHeaders(rawHeaders: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!HOP_BY_HOP.has(rawHeaders[i]!.toLowerCase())) kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}

/** Writes the first `limit` bytes of `source` to `sink`, then calls `atLimit` once; later bytes are dropped. */
function passFirstBytes(source: Readable, sink: Writable, limit: number, atLimit: () => void): void {
  let sent = 0;
  source.on('data', (chunk: Buffer) => {
    if (sent >= limit) return;
    const piece = chunk.subarray(0, limit - sent);
    sent += piece.length;
    sink.write(piece);
    if (sent === limit) atLimit();
  });
}
