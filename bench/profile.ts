/**
 * Where the gateway's CPU goes, from a V8 CPU profile (`--cpu-prof`, written by `npm run bench --
 * --profile` to .bench/profiles/; open a .cpuprofile in Chrome DevTools or speedscope for the
 * flame graph). Each sample is charged to the innermost keygate module on its stack (so undici or
 * crypto work a module asked for counts as that module's), else to what ran it: GC, Node's HTTP
 * server and sockets, undici's own socket reads.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Keygate modules (path under dist/, without .js) → the concern they belong to. */
const CONCERNS: Array<[RegExp, string]> = [
  [/^store\//, 'key and bucket lookups (SQLite data_version, caches)'],
  [/^sigv4\//, 'SigV4 verification of the client request'],
  [/^upstream\/signing$/, 're-signing the upstream request (aws4)'],
  [/^upstream\//, 'forwarding: upstream request and answer (undici)'],
  [/^observability\//, 'access log and metrics'],
  [/^(s3\/|authz$)/, 'address, classification, authorization, plan'],
  [/^http\/respond$/, 'writing the reply to the client'],
  [/^http\//, 'request pipeline (ids, records, CORS, body plumbing)'],
];

export interface ProfileShare {
  concern: string;
  /** Share of the process's busy (non-idle) time. */
  share: number;
}

function concernOf(url: string): string | null {
  const match = /\/dist\/(.+)\.js$/.exec(url);
  if (!match) return null;
  const module = match[1]!;
  return CONCERNS.find(([pattern]) => pattern.test(module))?.[1] ?? 'other keygate code';
}

export function summarizeProfile(file: string): { busySeconds: number; shares: ProfileShare[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const charged = new Map<number, string>();
  const chargeOf = (id: number): string => {
    const known = charged.get(id);
    if (known !== undefined) return known;
    const frames: ProfileNode['callFrame'][] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) frames.push(byId.get(at)!.callFrame);
    const leaf = frames[0]!;
    let concern: string | null = null;
    if (leaf.functionName === '(garbage collector)') concern = 'garbage collection';
    for (const frame of frames) concern ??= concernOf(frame.url);
    if (concern === null) {
      concern = frames.some((frame) => frame.url.includes('node_modules/undici'))
        ? 'undici socket I/O outside a keygate call'
        : 'Node HTTP server, sockets, event loop';
    }
    charged.set(id, concern);
    return concern;
  };
  const totals = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, index) => {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)' || frame.functionName === '(program)') return;
    const micros = profile.timeDeltas[index] ?? 0;
    busy += micros;
    const concern = chargeOf(id);
    totals.set(concern, (totals.get(concern) ?? 0) + micros);
  });
  const shares = [...totals].map(([concern, micros]) => ({ concern, share: micros / busy })).sort((a, b) => b.share - a.share);
  return { busySeconds: busy / 1e6, shares };
}

export interface ProfiledProcess {
  file: string;
  /** Requests the process answered while profiled (warm-ups included); null when it also carried large objects. */
  requests: number | null;
}

/**
 * The report's section on where the CPU went: the gateway's profile and, when there is one, the
 * node floor's, concern by concern. With request counts (small requests only) each concern is in
 * µs per request, so the gateway's extra cost shows against what the floor pays for the same work;
 * otherwise as shares of busy time. Profiling adds CPU (more to the gateway than to the floor), so
 * the totals are above the unprofiled CPU per request.
 */
export function profileSection(gateway: ProfiledProcess, floor: ProfiledProcess | null, show: (file: string) => string): string[] {
  const gatewaySummary = summarizeProfile(gateway.file);
  const floorSummary = floor === null ? null : summarizeProfile(floor.file);
  const perRequest = gateway.requests !== null && gateway.requests > 0 && (floor === null || (floor.requests !== null && floor.requests > 0));
  const concerns = [...new Set([...gatewaySummary.shares, ...(floorSummary?.shares ?? [])].map((row) => row.concern))];
  const cell = (summary: ReturnType<typeof summarizeProfile>, requests: number | null, concern: string): string => {
    const share = summary.shares.find((row) => row.concern === concern)?.share ?? 0;
    return perRequest ? `${((share * summary.busySeconds * 1e6) / requests!).toFixed(1)} µs` : `${(share * 100).toFixed(1)}%`;
  };
  const total = (summary: ReturnType<typeof summarizeProfile>, requests: number | null): string =>
    perRequest ? `**${((summary.busySeconds * 1e6) / requests!).toFixed(1)} µs**` : `**${summary.busySeconds.toFixed(1)} s busy**`;
  const files = [`the gateway's \`${show(gateway.file)}\``, ...(floor === null ? [] : [`the node floor's \`${show(floor.file)}\``])].join(', ');
  const header = floorSummary === null ? ['| concern | gateway |', '|---|---|'] : ['| concern | gateway | node floor |', '|---|---|---|'];
  const row = (concern: string) =>
    `| ${concern} | ${cell(gatewaySummary, gateway.requests, concern)}${floorSummary === null ? '' : ` | ${cell(floorSummary, floor!.requests, concern)}`} |`;
  return [
    `## Where the CPU went (${perRequest ? 'CPU profiles, per request answered' : 'CPU profiles, share of busy time'})`,
    '',
    'Each sample is charged to the innermost keygate module on its stack, else to what ran it (GC, undici, Node). ' +
      (perRequest
        ? "Per request: each process's busy time over every request it answered, warm-ups included. "
        : 'Shares, not µs: these profiles include the large transfers too (run with `--only=small` for µs per request). ') +
      `Profiling itself adds CPU, more to the gateway than to the floor: compare concerns, not these totals with the unprofiled ones above. Flame graphs (Chrome DevTools or speedscope): ${files}.`,
    '',
    ...header,
    ...concerns.map(row),
    `| total | ${total(gatewaySummary, gateway.requests)}${floorSummary === null ? '' : ` | ${total(floorSummary, floor!.requests)}`} |`,
    '',
  ];
}

/** The newest .cpuprofile in `directory`, or null. */
export function newestProfile(directory: string): string | null {
  let files: string[];
  try {
    files = readdirSync(directory).filter((name) => name.endsWith('.cpuprofile'));
  } catch {
    return null;
  }
  const newest = files.map((name) => path.join(directory, name)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  return newest ?? null;
}

/** `npx tsx bench/profile.ts FILE.cpuprofile`: the table for one profile. */
if (import.meta.url === `file://${process.argv[1]}`) {
  const { busySeconds, shares } = summarizeProfile(process.argv[2]!);
  process.stdout.write(`busy ${busySeconds.toFixed(2)} s\n`);
  for (const { concern, share } of shares) process.stdout.write(`${(share * 100).toFixed(1).padStart(5)}%  ${concern}\n`);
}
