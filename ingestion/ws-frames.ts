// WebSocket framing (RFC 6455) as the ingestion's client needs it, in pure code: a reader of the server's frames and a
// writer of the client's (masked) ones. The reader takes the socket's chunks as they come and hands each message's
// text straight out of the chunk that holds it: no Buffer object per frame or per message (the `ws` receiver made
// about six, a third of the worker's garbage). A frame split across chunks is gathered into one buffer sized by its
// header, never by concatenating chunks. No extension is negotiated, so compressed frames (RSV1) are a protocol error.

/** Why the reader gave up; `status` is the close code the client sends (1002 protocol error, 1009 too big). */
export class FrameError extends Error {
  constructor(
    message: string,
    readonly status: 1002 | 1009,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

export interface FrameSink {
  /** A whole text message, decoded as UTF-8 (a bad byte reads as U+FFFD); a binary one as latin1. */
  message(text: string, binary: boolean): void;
  ping(payload: Buffer): void;
  /** The server's close frame: its code (1005 when it gave none) and reason. */
  close(code: number, reason: string): void;
}

const CONTINUATION = 0x0;
const TEXT = 0x1;
const BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** A frame header is at most 2 bytes, 8 of extended length (server frames carry no mask). */
const HEADER_MAX = 10;
/** Most frames one message may come in: empty continuation frames would otherwise grow it without bound. */
export const FRAGMENTS_MAX = 4_096;

/** Bytes of a header whose second byte is `b1`: two, then 2 or 8 of extended length. */
const headerBytesOf = (b1: number): number => ((b1 & 0x7f) === 126 ? 4 : (b1 & 0x7f) === 127 ? 10 : 2);

/** The payload length of the whole header at `o`; a 64-bit one above 2^53 could not be a length anyone buffers. */
function payloadLength(b: Buffer, o: number, b1: number): number {
  const short = b1 & 0x7f;
  if (short < 126) return short;
  if (short === 126) return b.readUInt16BE(o + 2);
  const high = b.readUInt32BE(o + 2);
  if (high > 0x1fffff) throw new FrameError('a 64-bit payload length over 2^53', 1009);
  return high * 2 ** 32 + b.readUInt32BE(o + 6);
}

export class FrameReader {
  /** Header bytes that arrived at the end of a chunk, waiting for the rest. */
  private readonly head = Buffer.alloc(HEADER_MAX);
  private headLength = 0;
  /** The frame whose payload is being gathered across chunks, and how much of it has arrived. */
  private partial: { fin: boolean; opcode: number; payload: Buffer; filled: number } | undefined;
  /** A fragmented message: its opcode and its payloads so far. */
  private fragments: { opcode: number; parts: Buffer[]; bytes: number } | undefined;
  private failed = false;

  constructor(
    /** The largest message taken: a frame or fragments announcing more fail with 1009 before anything is buffered. */
    private readonly maxPayload: number,
    private readonly sink: FrameSink,
  ) {}

  /** Reads every frame `chunk` completes; throws FrameError, after which it takes nothing more. */
  push(chunk: Buffer): void {
    if (this.failed) return;
    try {
      this.read(chunk);
    } catch (err) {
      this.failed = true;
      throw err;
    }
  }

  private read(chunk: Buffer): void {
    let o = 0;
    const end = chunk.length;
    if (this.partial !== undefined) o = this.fill(chunk, 0);
    if (this.headLength > 0) o = this.joinHead(chunk, o);
    while (o < end) {
      if (this.partial !== undefined) return;
      if (end - o < 2) return this.keepHead(chunk, o);
      const b0 = chunk[o]!;
      const b1 = chunk[o + 1]!;
      const headerBytes = headerBytesOf(b1);
      if (end - o < headerBytes) return this.keepHead(chunk, o);
      o = this.frame(chunk, o + headerBytes, b0, b1, payloadLength(chunk, o, b1));
    }
  }

  /** Reads the frame whose payload starts at `o`; returns the offset after it, or the chunk's end if it goes on. */
  private frame(chunk: Buffer, o: number, b0: number, b1: number, length: number): number {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) throw new FrameError('a frame with RSV bits set (no extension was negotiated)', 1002);
    if ((b1 & 0x80) !== 0) throw new FrameError('a masked frame from the server', 1002);
    if (opcode >= 0x8) {
      if (opcode > OP_PONG) throw new FrameError(`unknown control opcode ${opcode}`, 1002);
      if (!fin || length > 125) throw new FrameError('a fragmented or long control frame', 1002);
    } else if (opcode === CONTINUATION) {
      if (this.fragments === undefined) throw new FrameError('a continuation frame outside a message', 1002);
      if (this.fragments.bytes + length > this.maxPayload) throw new FrameError(`a message over ${this.maxPayload} bytes`, 1009);
      if (this.fragments.parts.length >= FRAGMENTS_MAX) throw new FrameError(`a message in more than ${FRAGMENTS_MAX} frames`, 1009);
    } else {
      if (opcode !== TEXT && opcode !== BINARY) throw new FrameError(`unknown data opcode ${opcode}`, 1002);
      if (this.fragments !== undefined) throw new FrameError('a new message inside a fragmented one', 1002);
      if (length > this.maxPayload) throw new FrameError(`a message over ${this.maxPayload} bytes`, 1009);
    }
    if (chunk.length - o >= length) {
      this.deliver(fin, opcode, chunk, o, o + length);
      return o + length;
    }
    this.partial = { fin, opcode, payload: Buffer.allocUnsafe(length), filled: 0 };
    return this.fill(chunk, o);
  }

  /** Copies what `chunk` holds of the partial frame from `o`; delivers it once whole. Returns the offset after. */
  private fill(chunk: Buffer, o: number): number {
    const p = this.partial!;
    const n = Math.min(p.payload.length - p.filled, chunk.length - o);
    chunk.copy(p.payload, p.filled, o, o + n);
    p.filled += n;
    if (p.filled === p.payload.length) {
      this.partial = undefined;
      this.deliver(p.fin, p.opcode, p.payload, 0, p.payload.length);
    }
    return o + n;
  }

  private deliver(fin: boolean, opcode: number, b: Buffer, start: number, end: number): void {
    switch (opcode) {
      case TEXT:
      case BINARY:
        if (fin) this.sink.message(b.toString(opcode === TEXT ? 'utf8' : 'latin1', start, end), opcode === BINARY);
        // The part is copied: a chunk's bytes are not the reader's to keep.
        else this.fragments = { opcode, parts: [Buffer.from(b.subarray(start, end))], bytes: end - start };
        return;
      case CONTINUATION: {
        const f = this.fragments!;
        f.parts.push(Buffer.from(b.subarray(start, end)));
        f.bytes += end - start;
        if (!fin) return;
        this.fragments = undefined;
        this.sink.message(Buffer.concat(f.parts, f.bytes).toString(f.opcode === TEXT ? 'utf8' : 'latin1'), f.opcode === BINARY);
        return;
      }
      case OP_PING:
        this.sink.ping(Buffer.from(b.subarray(start, end)));
        return;
      case OP_CLOSE:
        if (end - start === 1) throw new FrameError('a close frame of one byte', 1002);
        this.sink.close(end - start === 0 ? 1005 : b.readUInt16BE(start), b.toString('utf8', start + 2, end));
        return;
      default:
      // A pong answers nothing the client sent: ignored.
    }
  }

  /** Keeps an incomplete header from the end of a chunk. */
  private keepHead(chunk: Buffer, o: number): void {
    chunk.copy(this.head, 0, o);
    this.headLength = chunk.length - o;
  }

  /** Completes the kept header with the start of `chunk` and reads that frame; returns where the chunk goes on. */
  private joinHead(chunk: Buffer, o: number): number {
    const h = this.head;
    const want = (n: number): boolean => {
      const take = Math.min(n - this.headLength, chunk.length - o);
      if (take > 0) {
        chunk.copy(h, this.headLength, o, o + take);
        this.headLength += take;
        o += take;
      }
      return this.headLength >= n;
    };
    if (!want(2) || !want(headerBytesOf(h[1]!))) return o;
    this.headLength = 0;
    return this.frame(chunk, o, h[0]!, h[1]!, payloadLength(h, 0, h[1]!));
  }
}

/** A client frame (FIN set, masked with `mask`, 4 bytes) of `opcode` carrying `payload`. */
export function clientFrame(opcode: number, payload: Buffer, mask: Buffer): Buffer {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65_536 ? 2 : 8;
  const head = 2 + lengthBytes;
  const out = Buffer.allocUnsafe(head + 4 + n);
  out[0] = 0x80 | opcode;
  if (lengthBytes === 0) out[1] = 0x80 | n;
  else if (lengthBytes === 2) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  mask.copy(out, head, 0, 4);
  for (let i = 0; i < n; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}
