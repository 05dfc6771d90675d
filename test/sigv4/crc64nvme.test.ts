/**
 * The slice-by-16 CRC-64/NVME: known answers, and equality with @aws-sdk/crc64-nvme (the SDK's own
 * implementation, byte-for-byte what aws-cli and the SDKs send) for every length up to 300 bytes,
 * 1 MiB, arbitrary splits into updates, and slices at any byteOffset.
 */
import { Crc64Nvme as Reference } from '@aws-sdk/crc64-nvme';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Crc64Nvme } from '../../src/sigv4/crc64nvme.js';

/** Deterministic bytes (xorshift32), so a failure reproduces. */
function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function hex(...parts: Uint8Array[]): string {
  const crc = new Crc64Nvme();
  for (const part of parts) crc.update(part);
  return crc.digest().toString('hex');
}

/** The reference's digest is synchronous underneath; awaiting it keeps the test honest either way. */
async function reference(data: Uint8Array): Promise<string> {
  const crc = new Reference();
  crc.update(data);
  return Buffer.from(await crc.digest()).toString('hex');
}

describe('CRC-64/NVME', () => {
  it('gives the catalogue check value for "123456789", in one update or several', () => {
    expect(hex(Buffer.from('123456789'))).toBe('ae8b14860a799888');
    expect(hex(Buffer.from('1'), Buffer.from('2345'), Buffer.alloc(0), Buffer.from('6789'))).toBe('ae8b14860a799888');
  });

  it('gives the crc64fast-nvme example value for "hello world!"', () => {
    expect(hex(Buffer.from('hello world!'))).toBe('d9160d1fa8e418e3');
  });

  it('is zero for empty input, and digest() is 8 big-endian bytes that can be read twice', () => {
    const crc = new Crc64Nvme();
    expect(crc.digest()).toEqual(Buffer.alloc(8));
    crc.update(Buffer.from('123456789'));
    expect(crc.digest()).toEqual(Buffer.from('ae8b14860a799888', 'hex'));
    expect(crc.digest()).toEqual(Buffer.from('ae8b14860a799888', 'hex'));
  });

  it('equals @aws-sdk/crc64-nvme for every length 0..300', async () => {
    for (let length = 0; length <= 300; length++) {
      const data = bytes(length, length + 1);
      expect(hex(data), `length ${length}`).toBe(await reference(data));
    }
  });

  it('equals @aws-sdk/crc64-nvme on 1 MiB (many scratch-buffer fills), and on all-zero and all-0xff input', async () => {
    const data = bytes(1024 * 1024 + 13, 42);
    expect(hex(data)).toBe(await reference(data));
    for (const fill of [0x00, 0xff]) {
      const uniform = Buffer.alloc(100_003, fill);
      expect(hex(uniform), `fill ${fill}`).toBe(await reference(uniform));
    }
  });

  it('gives the one-shot value for any split into updates', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 40_000 }), fc.array(fc.nat(), { maxLength: 12 }), async (data, cuts) => {
        const points = [...new Set(cuts.map((cut) => cut % (data.length + 1)))].sort((a, b) => a - b);
        const parts: Uint8Array[] = [];
        let previous = 0;
        for (const point of [...points, data.length]) {
          parts.push(data.subarray(previous, point));
          previous = point;
        }
        const expected = await reference(data);
        expect(hex(data)).toBe(expected);
        expect(hex(...parts)).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('reads Buffer slices at any byteOffset (not a multiple of 4 or 8), leaving the bytes around them alone', async () => {
    const backing = bytes(70_000, 7);
    for (const offset of [1, 2, 3, 4, 5, 6, 7, 9, 13]) {
      for (const length of [0, 1, 15, 16, 17, 31, 33, 255, 16 * 1024 - 1, 16 * 1024 + 1, 65_536]) {
        const slice = backing.subarray(offset, offset + length);
        expect(slice.byteOffset % 8).not.toBe(0);
        expect(hex(slice), `offset ${offset}, length ${length}`).toBe(await reference(Buffer.from(slice)));
      }
    }
    // a slice of a pooled Buffer.from(string) and of a Uint8Array over a shared ArrayBuffer
    const pooled = Buffer.from('x'.repeat(5) + '123456789').subarray(5);
    expect(hex(pooled)).toBe('ae8b14860a799888');
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 3, 1000);
    expect(hex(view)).toBe(await reference(Buffer.from(view)));
  });
});
