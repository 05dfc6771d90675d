/**
 * S3 flexible checksums (x-amz-checksum-*) and Content-MD5, computed incrementally over the decoded
 * object bytes. Values travel as base64 of the big-endian digest.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { crc32c } from './crc32c.js';
import { Crc64Nvme } from './crc64nvme.js';

export type ChecksumAlgorithm = 'crc32' | 'crc32c' | 'crc64nvme' | 'sha1' | 'sha256';

export const CHECKSUM_HEADER_PREFIX = 'x-amz-checksum-';

const DIGEST_BYTES: Record<ChecksumAlgorithm | 'md5', number> = {
  crc32: 4,
  crc32c: 4,
  crc64nvme: 8,
  sha1: 20,
  sha256: 32,
  md5: 16,
};

/** 'x-amz-checksum-crc32' -> 'crc32'; undefined for other names (including x-amz-checksum-type/-algorithm). */
export function checksumAlgorithmOfHeader(name: string): ChecksumAlgorithm | undefined {
  if (!name.startsWith(CHECKSUM_HEADER_PREFIX)) return undefined;
  const algorithm = name.slice(CHECKSUM_HEADER_PREFIX.length);
  return algorithm in DIGEST_BYTES && algorithm !== 'md5' ? (algorithm as ChecksumAlgorithm) : undefined;
}

export function checksumHeaderName(algorithm: ChecksumAlgorithm): string {
  return CHECKSUM_HEADER_PREFIX + algorithm;
}

export interface RunningChecksum {
  update(data: Uint8Array): void;
  /** Big-endian digest bytes. */
  digest(): Promise<Buffer>;
}

export function createRunningChecksum(algorithm: ChecksumAlgorithm | 'md5'): RunningChecksum {
  switch (algorithm) {
    case 'crc32': {
      let value = 0;
      return {
        update: (data) => void (value = crc32(data, value)),
        digest: async () => uint32BigEndian(value),
      };
    }
    case 'crc32c': {
      let value = 0;
      return {
        update: (data) => void (value = crc32c(data, value)),
        digest: async () => uint32BigEndian(value),
      };
    }
    case 'crc64nvme': {
      const crc = new Crc64Nvme();
      return {
        update: (data) => void crc.update(data),
        digest: async () => crc.digest(),
      };
    }
    case 'sha1':
    case 'sha256':
    case 'md5': {
      const hash = createHash(algorithm);
      return {
        update: (data) => void hash.update(data),
        digest: async () => hash.digest(),
      };
    }
  }
}

function uint32BigEndian(value: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strictly decodes a base64 digest of the algorithm's size; undefined when malformed. Only the
 * canonical encoding is accepted (unused padding bits zero), so each digest has exactly one spelling.
 */
export function decodeDigest(algorithm: ChecksumAlgorithm | 'md5', base64: string): Buffer | undefined {
  if (!BASE64.test(base64)) return undefined;
  const bytes = Buffer.from(base64, 'base64');
  return bytes.length === DIGEST_BYTES[algorithm] && bytes.toString('base64') === base64 ? bytes : undefined;
}
