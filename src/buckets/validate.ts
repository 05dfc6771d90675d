/**
 * Rules for registering a bucket: its public name (what clients address) and where it lives
 * upstream. Public names follow S3's bucket naming rules so every S3 client can address them;
 * RunPod network volume ids (e.g. `abc123xyz9`) already satisfy them.
 */

export type BucketProblem = 'invalid' | 'conflict' | 'not_found';

export class BucketValidationError extends Error {
  constructor(
    message: string,
    /** 'conflict' when the bucket is already registered, 'not_found' when it is not registered. */
    readonly problem: BucketProblem = 'invalid',
  ) {
    super(message);
    this.name = 'BucketValidationError';
  }
}

export interface AddBucketInput {
  name: string;
  /** RunPod datacenter id, e.g. EU-RO-1. Mutually exclusive with endpoint/region. */
  datacenter?: string | null;
  /** Bucket name upstream; defaults to `name`. */
  upstreamBucket?: string | null;
  /** Any S3 endpoint URL; requires region. */
  endpoint?: string | null;
  region?: string | null;
}

export interface BucketSpec {
  name: string;
  datacenter: string | null;
  endpoint: string | null;
  region: string | null;
  upstreamBucket: string;
}

const DATACENTER_ID = /^[A-Z]{2,4}(-[A-Z]{2,4})?-\d+$/;
const REGION = /^[a-z0-9-]{1,64}$/i;
/** Upstream names are the upstream's business (legacy S3 buckets may have capitals or underscores); only keep them path-safe. */
const UPSTREAM_BUCKET = /^[A-Za-z0-9._-]{1,255}$/;

/** Why `name` is not a valid S3 bucket name, or null when it is. */
export function bucketNameProblem(name: string): string | null {
  if (name.length < 3 || name.length > 63) return `"${name}" must be 3 to 63 characters long.`;
  if (!/^[a-z0-9.-]+$/.test(name)) return `"${name}" may only contain lowercase letters, digits, dots and hyphens.`;
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return `"${name}" must start and end with a letter or digit.`;
  if (/\.\.|\.-|-\./.test(name)) return `"${name}" must not contain "..", ".-" or "-.".`;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return `"${name}" must not look like an IP address.`;
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name) || /(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(name)) {
    return `"${name}" uses a prefix or suffix S3 reserves.`;
  }
  return null;
}

export function isValidBucketName(name: string): boolean {
  return bucketNameProblem(name) === null;
}

export function validateAddBucketInput(input: AddBucketInput): BucketSpec {
  if (typeof input.name !== 'string' || input.name === '') {
    throw new BucketValidationError('A bucket name is required, e.g. `keygate buckets add my-bucket --datacenter EU-RO-1`.');
  }
  const nameProblem = bucketNameProblem(input.name);
  if (nameProblem) {
    throw new BucketValidationError(`Bucket name ${nameProblem} Use S3 bucket naming (e.g. "my-data" or a RunPod volume id).`);
  }

  const datacenter = optionalString(input.datacenter, 'datacenter');
  const endpoint = optionalString(input.endpoint, 'endpoint');
  const region = optionalString(input.region, 'region');
  const upstreamBucket = optionalString(input.upstreamBucket, 'upstream bucket') ?? input.name;

  if (datacenter !== null && (endpoint !== null || region !== null)) {
    throw new BucketValidationError(
      'Give either a RunPod datacenter or an endpoint with a region, not both: the datacenter already determines the endpoint and region.',
    );
  }
  if (endpoint !== null && region === null) {
    throw new BucketValidationError('An endpoint needs its signing region too; add a region, e.g. "us-east-1".');
  }
  if (region !== null && endpoint === null) {
    throw new BucketValidationError('A region is only used together with an endpoint; add the endpoint URL, or use a datacenter instead.');
  }

  const normalizedDatacenter = datacenter === null ? null : datacenter.toUpperCase();
  if (normalizedDatacenter !== null && !DATACENTER_ID.test(normalizedDatacenter)) {
    throw new BucketValidationError(`"${datacenter}" is not a RunPod datacenter id; use one like EU-RO-1 or US-KS-2.`);
  }
  if (region !== null && !REGION.test(region)) {
    throw new BucketValidationError(`"${region}" is not a region name; use e.g. "us-east-1".`);
  }
  if (!UPSTREAM_BUCKET.test(upstreamBucket)) {
    throw new BucketValidationError(`Upstream bucket "${upstreamBucket}" may only contain letters, digits, dots, hyphens and underscores (1-255 characters).`);
  }

  return {
    name: input.name,
    datacenter: normalizedDatacenter,
    endpoint: endpoint === null ? null : normalizeEndpoint(endpoint),
    region,
    upstreamBucket,
  };
}

function normalizeEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BucketValidationError(`"${value}" is not a URL; use e.g. "https://s3.example.com".`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BucketValidationError(`Endpoint "${value}" must start with http:// or https://.`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new BucketValidationError(
      `Endpoint "${value}" must be a plain base URL without credentials, query or fragment; credentials come from the environment.`,
    );
  }
  return url.href.replace(/\/+$/, '');
}

function optionalString(value: unknown, what: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new BucketValidationError(`The ${what} must be a string.`);
  const trimmed = value.trim();
  if (trimmed === '') throw new BucketValidationError(`The ${what} must not be empty; leave it out instead.`);
  return trimmed;
}
