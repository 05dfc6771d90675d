/**
 * Pieces held back by the payload verifier: the bytes come out in order, whatever sizes they came
 * in, and the objects held are bounded by the bytes held — one-byte pieces kept one Buffer each
 * cost ~24 MB of heap per 64 KiB block and ran a gateway with 20 slow senders out of memory.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PieceGatherer } from '../../src/sigv4/piece-gatherer.js';

describe('PieceGatherer', () => {
  it('gives back exactly the bytes it was given, in order, for any mix of sizes', () => {
    for (let round = 0; round < 50; round++) {
      const gatherer = new PieceGatherer();
      const sent: Buffer[] = [];
      const taken: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        const size = [0, 1, 2, 7, 100, 4095, 4096, 5000, 16 * 1024, 70_000][Math.floor(Math.random() * 10)]!;
        const piece = randomBytes(size);
        sent.push(piece);
        gatherer.add(piece);
        if (Math.random() < 0.05) taken.push(gatherer.take());
      }
      taken.push(gatherer.take());
      expect(Buffer.concat(taken).equals(Buffer.concat(sent))).toBe(true);
      expect(gatherer.size).toBe(0);
    }
  });

  it('holds a 64 KiB block of one-byte pieces in a handful of Buffers', () => {
    const gatherer = new PieceGatherer();
    for (let i = 0; i < 64 * 1024; i++) gatherer.add(Buffer.from([i & 0xff]));
    expect(gatherer.size).toBe(64 * 1024);
    // 8 kept as they came, then runs of 16 KiB.
    expect(gatherer.pieceCount).toBeLessThanOrEqual(8 + 5);
    const block = gatherer.take();
    expect(block.length).toBe(64 * 1024);
    expect([...block.subarray(250, 260)]).toEqual([250, 251, 252, 253, 254, 255, 0, 1, 2, 3]);
  });

  it('copies nothing for a body that came in one piece, nor for large pieces', () => {
    const gatherer = new PieceGatherer();
    const piece = randomBytes(1000);
    gatherer.add(piece);
    expect(gatherer.take()).toBe(piece);
    const large = randomBytes(64 * 1024);
    for (let i = 0; i < 10; i++) gatherer.add(Buffer.from([1]));
    gatherer.add(large);
    expect(gatherer.pieceCount).toBeLessThanOrEqual(10);
    expect(gatherer.take().subarray(10).equals(large)).toBe(true);
  });
});
