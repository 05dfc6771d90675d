/**
 * RunPod datacenter ids: their shape, their spelling, and the ones known to serve the S3 API.
 * Kept apart from runpod.ts (which talks to RunPod's REST API) so that configuration can check ids
 * without loading an HTTP client.
 */

/** Datacenters RunPod documents as serving the S3 API; only a hint for error messages (new ones work by derivation). */
export const RUNPOD_S3_DATACENTERS = [
  'EU-CZ-1',
  'EU-RO-1',
  'EUR-IS-1',
  'EUR-NO-1',
  'US-CA-2',
  'US-GA-2',
  'US-IL-1',
  'US-KS-2',
  'US-MD-1',
  'US-MO-1',
  'US-MO-2',
  'US-NC-1',
  'US-NC-2',
] as const;

const DATACENTER_ID = /^[A-Z]{2,4}(-[A-Z]{2,4})?-\d+$/i;

/** RunPod signs and routes by the upper-case datacenter id (e.g. EU-RO-1). */
export function normalizeDatacenter(datacenter: string): string {
  return datacenter.trim().toUpperCase();
}

export function isDatacenterId(datacenter: string): boolean {
  return DATACENTER_ID.test(datacenter.trim());
}

/** What to tell an operator who configured a datacenter id RunPod does not have. */
export function datacenterHint(): string {
  return `S3-enabled RunPod datacenters include ${RUNPOD_S3_DATACENTERS.join(', ')}`;
}

/**
 * Datacenters the gateway creates network volumes in: RunPod's S3-enabled ones, plus every
 * datacenter KEYGATE_RUNPOD_ENDPOINTS maps (a new datacenter is enabled by mapping its endpoint).
 * Upper case, sorted.
 */
export function knownDatacenters(endpointOverrides: Record<string, URL> | null): string[] {
  return [...new Set<string>([...RUNPOD_S3_DATACENTERS, ...Object.keys(endpointOverrides ?? {}).map(normalizeDatacenter)])].sort();
}
