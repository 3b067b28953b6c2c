// LZ4 frames (the format Kafka's lz4 codec writes) decompressed into a buffer the caller keeps and reuses (pure). The
// client's codec returns a new buffer per batch, several times the batch's compressed size: a writer decompressing
// every fetched batch made most of its ArrayBuffer garbage that way. Checksums are not verified: the record batch's
// CRC-32C already covers these bytes.

const MAGIC = 0x184d2204;
/** Block maximum sizes by the BD byte's bits 4-6. */
const BLOCK_MAX = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

/** A growable output buffer, reused from call to call. */
export class Lz4Scratch {
  buf: Buffer;
  constructor(
    bytes = 0,
    /** Past this the buffer is let go after use, so one huge batch does not keep its memory. */
    private readonly keepMax = 16 * 1024 * 1024,
  ) {
    this.buf = Buffer.allocUnsafeSlow(bytes);
  }

  /** Room for `bytes` from `used`, keeping what is there. */
  ensure(used: number, bytes: number): Buffer {
    if (used + bytes <= this.buf.length) return this.buf;
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, used + bytes));
    this.buf.copy(next, 0, 0, used);
    return (this.buf = next);
  }

  /** Called when nothing reads the last output any more: a buffer grown past keepMax goes. */
  trim(): void {
    if (this.buf.length > this.keepMax) this.buf = Buffer.allocUnsafeSlow(0);
  }
}

/**
 * Decompresses one or more concatenated LZ4 frames into `scratch`; returns a view of the output, valid until the
 * scratch is used again. Throws on anything malformed (never reads or writes out of bounds). `maxBytes` bounds the
 * output (a few hostile bytes can claim a huge one): a block that could pass it is refused.
 */
export function lz4Decompress(src: Uint8Array, scratch: Lz4Scratch, maxBytes = 256 * 1024 * 1024): Buffer {
  let ip = 0;
  let op = 0;
  const fail = (why: string): never => {
    throw new Error(`lz4: ${why} (byte ${ip} of ${src.length})`);
  };
  const u32 = (at: number): number => {
    if (at + 4 > src.length) fail('truncated frame');
    return (src[at]! | (src[at + 1]! << 8) | (src[at + 2]! << 16)) + src[at + 3]! * 0x1000000;
  };
  while (ip < src.length) {
    if (u32(ip) !== MAGIC) fail('not an LZ4 frame');
    ip += 4;
    if (ip + 3 > src.length) fail('truncated frame header');
    const flg = src[ip]!;
    const bd = src[ip + 1]!;
    if (flg >> 6 !== 1) fail(`frame version ${flg >> 6}`);
    const blockChecksum = (flg & 0x10) !== 0;
    const contentChecksum = (flg & 0x04) !== 0;
    const blockMax = BLOCK_MAX[(bd >> 4) & 7]!;
    if (blockMax === 0) fail('block size');
    ip += 2 + ((flg & 0x08) !== 0 ? 8 : 0) + ((flg & 0x01) !== 0 ? 4 : 0) + 1; // FLG, BD, content size, dictionary id, header checksum
    for (;;) {
      const word = u32(ip);
      ip += 4;
      if (word === 0) break; // end mark
      const size = word & 0x7fffffff;
      if (size > blockMax || ip + size > src.length) fail('block runs past the frame');
      if (op + blockMax > maxBytes) fail(`a block could take the output past ${maxBytes} bytes`);
      const out = scratch.ensure(op, blockMax);
      if (word & 0x80000000) {
        out.set(src.subarray(ip, ip + size), op); // stored uncompressed
        op += size;
      } else {
        op = block(src, ip, ip + size, out, op, op + blockMax, fail);
      }
      ip += size + (blockChecksum ? 4 : 0);
    }
    if (contentChecksum) ip += 4;
    if (ip > src.length) fail('truncated frame');
  }
  return scratch.buf.subarray(0, op);
}

// Where `block` reads (single-threaded, never held across calls): no tuple per length.
const at = { ip: 0 };

/** A token's length nibble `n`, continued when 15 by bytes at at.ip up to `end` while they are 255; moves at.ip. */
function lengthOf(n: number, src: Uint8Array, end: number, fail: (why: string) => never, what: string): number {
  if (n !== 15) return n;
  let b;
  do {
    if (at.ip >= end) fail(`truncated ${what} length`);
    b = src[at.ip++]!;
    n += b;
  } while (b === 255);
  return n;
}

/** One LZ4 block from src[ip, end) into out at op (at most up to outEnd); returns the position after its output. */
function block(src: Uint8Array, ip: number, end: number, out: Buffer, op: number, outEnd: number, fail: (why: string) => never): number {
  while (ip < end) {
    const token = src[ip++]!;
    at.ip = ip;
    const literals = lengthOf(token >> 4, src, end, fail, 'literal');
    ip = at.ip;
    if (ip + literals > end || op + literals > outEnd) fail('literals run past the block');
    if (literals < 16) for (let i = 0; i < literals; i++) out[op + i] = src[ip + i]!;
    else out.set(src.subarray(ip, ip + literals), op);
    ip += literals;
    op += literals;
    if (ip === end) break; // the last sequence is literals only
    if (ip + 2 > end) fail('truncated match offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail('match offset before the output');
    at.ip = ip;
    const length = lengthOf(token & 15, src, end, fail, 'match') + 4;
    ip = at.ip;
    if (op + length > outEnd) fail('match runs past the block');
    let from = op - offset;
    if (offset >= length && length > 32) {
      out.copyWithin(op, from, from + length);
      op += length;
    } else {
      // Overlapping (a repeat of the last `offset` bytes) or short: byte by byte.
      const stop = op + length;
      while (op < stop) out[op++] = out[from++]!;
    }
  }
  return op;
}
