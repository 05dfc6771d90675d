/** The AWS JS SDK and the MinIO client pointed at a gateway with an rs_ key, as the README tells users to configure them. */
import { S3Client } from '@aws-sdk/client-s3';
import * as Minio from 'minio';

export interface GatewayCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** Path-style, the key's region, and no SDK retries (tests assert on the first answer). */
export function gatewayS3Client(endpoint: string, key: GatewayCredentials, secretAccessKey = key.secretAccessKey): S3Client {
  return new S3Client({
    endpoint,
    region: key.region,
    forcePathStyle: true,
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
}

/** The MinIO client on the gateway's plain-HTTP endpoint, path-style, in the key's region. */
export function gatewayMinioClient(endpoint: string, key: GatewayCredentials): Minio.Client {
  const url = new URL(endpoint);
  return new Minio.Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: false,
    accessKey: key.accessKeyId,
    secretKey: key.secretAccessKey,
    region: key.region,
    pathStyle: true,
  });
}

/** 'allowed', 'AccessDenied', or `error:<name>` for any other failure of an SDK call. */
export async function sdkOutcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'allowed';
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    // HEAD errors have no body, so the SDK can only name them by status.
    if (e.name === 'AccessDenied' || (e.$metadata?.httpStatusCode === 403 && /^(Forbidden|403|Unknown|UnknownError)$/.test(e.name ?? '')))
      return 'AccessDenied';
    return `error:${e.name}`;
  }
}
