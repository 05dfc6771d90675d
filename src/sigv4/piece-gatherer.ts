/**
 * Decoded body pieces held back before they are passed on in blocks (src/sigv4/payload.ts). Pieces
 * arrive in sizes the sender chooses — one-byte TCP segments, tiny aws-chunked chunks — and each
 * kept as its own Buffer costs a few hundred bytes of heap: 64 KiB gathered from one-byte pieces
 * was ~24 MB per connection, enough for 20 slow senders to exhaust a 128 MB heap. So past a few
 * pieces, small ones are copied into one run buffer, which becomes a single Buffer when it ends:
 * the memory held is then about the bytes held, however they arrived.
 */

/** Pieces at least this large are kept as they are (no copy). */
const SMALL_PIECE_BYTES = 4 * 1024;
/** Small pieces are copied into runs of up to this many bytes. */
const RUN_BYTES = 16 * 1024;
/** Pieces kept as they arrived before small ones are copied (a small body read in a few pieces costs no copy). */
const PIECES_KEPT_AS_IS = 8;

export class PieceGatherer {
  private pieces: Buffer[] = [];
  private bytes = 0;
  private run: Buffer | null = null;
  private runUsed = 0;

  /** Bytes gathered so far. */
  get size(): number {
    return this.bytes;
  }

  /** Pieces (Buffers) held, for tests: bounded by the bytes held, not by how they arrived. */
  get pieceCount(): number {
    return this.pieces.length + (this.runUsed > 0 ? 1 : 0);
  }

  add(piece: Buffer): void {
    if (piece.length === 0) return;
    this.bytes += piece.length;
    if (piece.length >= SMALL_PIECE_BYTES || (this.runUsed === 0 && this.pieces.length < PIECES_KEPT_AS_IS)) {
      this.endRun();
      this.pieces.push(piece);
      return;
    }
    this.run ??= Buffer.allocUnsafe(RUN_BYTES);
    if (this.runUsed + piece.length > this.run.length) this.endRun();
    piece.copy(this.run, this.runUsed);
    this.runUsed += piece.length;
  }

  /** Everything gathered, as one Buffer (the piece itself when there is one), and starts afresh. */
  take(): Buffer {
    this.endRun();
    const all = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.bytes);
    this.pieces = [];
    this.bytes = 0;
    return all;
  }

  /** The run so far becomes a Buffer of its own (a copy: the run buffer is reused). */
  private endRun(): void {
    if (this.runUsed === 0) return;
    this.pieces.push(Buffer.from(this.run!.subarray(0, this.runUsed)));
    this.runUsed = 0;
  }
}
