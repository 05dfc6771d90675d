/** The AWS JS SDK pointed at a gateway with an rs_ key, as the README tells users to configure it. */
import { S3Client } from '@aws-sdk/client-s3';

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
