import { compressionsAlgorithms } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { lz4Decompress, Lz4Scratch } from './lz4.ts';

// Frames written by the client's own lz4 codec (the one ingestion's batches are compressed with).
const pack = (b: Buffer): Buffer => compressionsAlgorithms.lz4.compressSync(b) as Buffer;

/** Pseudo-random bytes (incompressible: stored blocks) and tick-like JSON (matches, overlapping ones too). */
function random(n: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return b;
}
const ticks = (n: number): Buffer =>
  Buffer.from(Array.from({ length: n }, (_, i) => `{"type":"trade","symbol":"BTCUSDT","tradeId":${4e9 + i},"price":"${(97000 + (i % 97) / 7).toFixed(2)}","quantity":"0.00${i % 10}"}`).join(''));

/** A frame built by hand: FLG/BD as given, blocks as given (raw: stored uncompressed), an end mark, optional trailers. */
function frame(flg: number, blocks: { bytes: Buffer; raw?: boolean }[], opts: { contentSize?: bigint; blockChecksum?: boolean; contentChecksum?: boolean } = {}): Buffer {
  const parts: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18, flg, 0x40])];
  if (opts.contentSize !== undefined) {
    const s = Buffer.alloc(8);
    s.writeBigUInt64LE(opts.contentSize);
    parts.push(s);
  }
  parts.push(Buffer.from([0x00])); // header checksum (not verified)
  for (const b of blocks) {
    const size = Buffer.alloc(4);
    size.writeUInt32LE((b.bytes.length | (b.raw ? 0x80000000 : 0)) >>> 0);
    parts.push(size, b.bytes);
    if (opts.blockChecksum) parts.push(Buffer.alloc(4));
  }
  parts.push(Buffer.alloc(4));
  if (opts.contentChecksum) parts.push(Buffer.alloc(4));
  return Buffer.concat(parts);
}

describe('lz4Decompress', () => {
  it('reads what the client compresses: tick JSON, incompressible bytes, empty input and several 4 MB blocks', () => {
    const scratch = new Lz4Scratch(1024);
    for (const raw of [ticks(3_000), random(100_000), Buffer.alloc(0), Buffer.concat([ticks(40_000), random(300_000)])]) {
      expect(lz4Decompress(pack(raw), scratch).equals(raw)).toBe(true);
    }
  });

  it('reuses its scratch buffer: the next output overwrites the last', () => {
    const scratch = new Lz4Scratch();
    const a = lz4Decompress(pack(ticks(100)), scratch);
    const first = Buffer.from(a);
    lz4Decompress(pack(random(a.length)), scratch);
    expect(a.equals(first)).toBe(false);
    expect(a.buffer).toBe(scratch.buf.buffer);
  });

  it('lets a scratch grown past its bound go after use', () => {
    const scratch = new Lz4Scratch(1024, 64 * 1024);
    lz4Decompress(pack(random(200_000)), scratch);
    expect(scratch.buf.length).toBeGreaterThan(64 * 1024);
    scratch.trim();
    expect(scratch.buf.length).toBe(0);
  });

  it('reads concatenated frames, stored blocks, a content size and checksums it skips', () => {
    const literals = Buffer.from('hello, lz4');
    // One sequence of literals only: token 0xa0 (10 literals), then the bytes.
    const block = Buffer.concat([Buffer.from([0xa0]), literals]);
    const f = Buffer.concat([
      frame(0x60, [{ bytes: block }]),
      frame(0x78 | 0x04, [{ bytes: Buffer.from('stored'), raw: true }, { bytes: block }], { contentSize: 16n, blockChecksum: true, contentChecksum: true }),
    ]);
    expect(lz4Decompress(f, new Lz4Scratch()).toString()).toBe('hello, lz4storedhello, lz4');
  });

  it('copies overlapping matches byte by byte (a run of one repeated byte)', () => {
    // "a" then a match of offset 1, length 4 + 15 + 6 = 25: 26 "a"s.
    const block = Buffer.from([0x1f, 0x61, 0x01, 0x00, 0x06, 0x00]);
    expect(lz4Decompress(frame(0x60, [{ bytes: block }]), new Lz4Scratch()).toString()).toBe('a'.repeat(26));
  });

  it('refuses malformed or hostile frames with a clear error, without reading or writing out of bounds', () => {
    const scratch = new Lz4Scratch();
    const good = pack(ticks(500));
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('not lz4 at all'), /not an LZ4 frame/],
      [good.subarray(0, 6), /truncated frame header/],
      [good.subarray(0, good.length - 4), /truncated frame|block runs past/],
      [good.subarray(0, 40), /block runs past the frame/],
      [Buffer.concat([good.subarray(0, 4), Buffer.from([0xa0]), good.subarray(5)]), /frame version 2/],
      [frame(0x60, [{ bytes: Buffer.from([0x10, 0x61, 0x05, 0x00]) }]), /match offset before the output/],
      [frame(0x60, [{ bytes: Buffer.from([0xf0, 0xff, 0xff]) }]), /truncated literal length/],
      [frame(0x60, [{ bytes: Buffer.from([0x50, 0x61]) }]), /literals run past the block/],
      [frame(0x60, [{ bytes: Buffer.from([0x10, 0x61, 0x01]) }]), /truncated match offset/],
    ];
    for (const [bytes, error] of cases) expect(() => lz4Decompress(bytes, scratch), error.source).toThrow(error);
    expect(() => lz4Decompress(pack(ticks(5_000)), scratch, 64 * 1024)).toThrow(/a block could take the output past 65536 bytes/);
    // Still good after the refusals.
    expect(lz4Decompress(good, scratch).equals(ticks(500))).toBe(true);
  });
});
