/**
 * CRC-64/NVME (S3's CRC64NVME; aws-cli v2's default trailer checksum), slice-by-16. The JS version of
 * @aws-sdk/crc64-nvme does slice-by-8 with byte loads (~300-480 MB/s here); sixteen lookups per
 * 16 bytes, with the input read as 32-bit words, run about three times faster, without BigInt: the
 * 64-bit state and table entries are kept as two 32-bit halves. Cross-checked against
 * @aws-sdk/crc64-nvme in the tests.
 */

const POLYNOMIAL_LOW = 0xac4bc9b5 | 0; // reflected 0xAD93D23594C93659 is 0x9A6C9329AC4BC9B5
const POLYNOMIAL_HIGH = 0x9a6c9329 | 0;

/**
 * Table s at [s * 256, s * 256 + 256): a byte's contribution once 15 - s more bytes follow it (table
 * 0 is the classic byte-at-a-time table). Low and high halves in two arrays indexed alike.
 */
const [LOW, HIGH] = ((): [Int32Array, Int32Array] => {
  const low = new Int32Array(16 * 256);
  const high = new Int32Array(16 * 256);
  for (let i = 0; i < 256; i++) {
    let l = i;
    let h = 0;
    for (let k = 0; k < 8; k++) {
      const mask = -(l & 1); // all ones when the bit shifted out is set
      l = ((l >>> 1) | (h << 31)) ^ (POLYNOMIAL_LOW & mask);
      h = (h >>> 1) ^ (POLYNOMIAL_HIGH & mask);
    }
    low[i] = l;
    high[i] = h;
  }
  for (let i = 256; i < 16 * 256; i++) {
    // previous table's entry shifted right by one byte, the byte shifted out folded back in via table 0
    const l = low[i - 256]!;
    const h = high[i - 256]!;
    low[i] = ((l >>> 8) | (h << 24)) ^ low[l & 0xff]!;
    high[i] = (h >>> 8) ^ high[l & 0xff]!;
  }
  return [low, high];
})();

/**
 * Input is copied through this buffer so that it can be read as aligned 32-bit words whatever the
 * caller's byteOffset. Int32Array reads them in platform byte order: on big-endian platforms (s390x,
 * AIX) update() takes the byte-at-a-time path instead.
 */
const SCRATCH_BYTES = 16 * 1024;
const SCRATCH = new Uint8Array(SCRATCH_BYTES);
const SCRATCH_WORDS = new Int32Array(SCRATCH.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Running CRC-64/NVME; digest() gives the 8 big-endian bytes S3 sends base64-encoded. */
export class Crc64Nvme {
  // Inverted running state (init and xorout are all ones), as 32-bit halves.
  private low = -1;
  private high = -1;

  update(data: Uint8Array): this {
    const L = LOW;
    const H = HIGH;
    const words = SCRATCH_WORDS;
    let l = this.low;
    let h = this.high;
    let offset = 0;
    const length = data.length;
    while (LITTLE_ENDIAN && length - offset >= 16) {
      const take = Math.min(SCRATCH_BYTES, (length - offset) & ~15);
      SCRATCH.set(data.subarray(offset, offset + take));
      for (let w = 0, end = take >>> 2; w < end; w += 4) {
        // 16 bytes: the first 8 (xored with the state) and the next 8, each byte through its table
        const a = l ^ words[w]!;
        const b = h ^ words[w + 1]!;
        const c = words[w + 2]!;
        const d = words[w + 3]!;
        const k0 = 0xf00 | (a & 0xff);
        const k1 = 0xe00 | ((a >>> 8) & 0xff);
        const k2 = 0xd00 | ((a >>> 16) & 0xff);
        const k3 = 0xc00 | (a >>> 24);
        const k4 = 0xb00 | (b & 0xff);
        const k5 = 0xa00 | ((b >>> 8) & 0xff);
        const k6 = 0x900 | ((b >>> 16) & 0xff);
        const k7 = 0x800 | (b >>> 24);
        const k8 = 0x700 | (c & 0xff);
        const k9 = 0x600 | ((c >>> 8) & 0xff);
        const k10 = 0x500 | ((c >>> 16) & 0xff);
        const k11 = 0x400 | (c >>> 24);
        const k12 = 0x300 | (d & 0xff);
        const k13 = 0x200 | ((d >>> 8) & 0xff);
        const k14 = 0x100 | ((d >>> 16) & 0xff);
        const k15 = d >>> 24;
        l = L[k0]! ^ L[k1]! ^ L[k2]! ^ L[k3]! ^ L[k4]! ^ L[k5]! ^ L[k6]! ^ L[k7]! ^ L[k8]! ^ L[k9]! ^ L[k10]! ^ L[k11]! ^ L[k12]! ^ L[k13]! ^ L[k14]! ^ L[k15]!;
        h = H[k0]! ^ H[k1]! ^ H[k2]! ^ H[k3]! ^ H[k4]! ^ H[k5]! ^ H[k6]! ^ H[k7]! ^ H[k8]! ^ H[k9]! ^ H[k10]! ^ H[k11]! ^ H[k12]! ^ H[k13]! ^ H[k14]! ^ H[k15]!;
      }
      offset += take;
    }
    while (offset < length) {
      const i = (l ^ data[offset++]!) & 0xff;
      l = ((l >>> 8) | (h << 24)) ^ L[i]!;
      h = (h >>> 8) ^ H[i]!;
    }
    this.low = l;
    this.high = h;
    return this;
  }

  digest(): Buffer {
    const out = Buffer.allocUnsafe(8);
    out.writeInt32BE(~this.high, 0);
    out.writeInt32BE(~this.low, 4);
    return out;
  }
}
