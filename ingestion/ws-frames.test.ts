import { describe, expect, it } from 'vitest';
import { clientFrame, FrameError, FrameReader, FRAGMENTS_MAX, OP_CLOSE, OP_PING } from './ws-frames.ts';

/** A server frame (unmasked) as a server writes it. */
function serverFrame(opcode: number, payload: Buffer | string, o: { fin?: boolean; rsv?: number; masked?: boolean } = {}): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const n = p.length;
  const ext = n < 126 ? Buffer.alloc(0) : n < 65_536 ? Buffer.alloc(2) : Buffer.alloc(8);
  if (ext.length === 2) ext.writeUInt16BE(n);
  if (ext.length === 8) ext.writeBigUInt64BE(BigInt(n));
  const b0 = ((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode;
  const b1 = (o.masked ? 0x80 : 0) | (ext.length === 0 ? n : ext.length === 2 ? 126 : 127);
  return Buffer.concat([Buffer.from([b0, b1]), ext, o.masked ? Buffer.alloc(4) : Buffer.alloc(0), p]);
}

function reader(maxPayload = 1 << 20) {
  const got: string[] = [];
  const r = new FrameReader(maxPayload, {
    message: (text, binary) => got.push(`${binary ? 'bin' : 'text'}:${text}`),
    ping: (payload) => got.push(`ping:${payload.toString()}`),
    close: (code, reason) => got.push(`close:${code}:${reason}`),
  });
  return { r, got };
}

const closeBody = (code: number, reason: string) => Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason)]);

describe('FrameReader', () => {
  const mid = 'm'.repeat(300); // a 16-bit length
  const big = 'b'.repeat(70_000); // a 64-bit length
  const stream = Buffer.concat([
    serverFrame(0x1, '{"stream":"btcusdt@trade"}'),
    serverFrame(OP_PING, 'p1'),
    serverFrame(0x1, mid),
    serverFrame(0x1, 'frag-', { fin: false }),
    serverFrame(OP_PING, 'p2'), // a control frame inside a fragmented message
    serverFrame(0x0, 'ment', { fin: false }),
    serverFrame(0x0, 'ed', { fin: true }),
    serverFrame(0x2, Buffer.from([0xe9, 0x41])),
    serverFrame(0x1, big),
    serverFrame(0x1, ''),
    serverFrame(0xa, 'unasked pong'),
    serverFrame(OP_CLOSE, closeBody(1001, 'going away')),
  ]);
  const want = ['text:{"stream":"btcusdt@trade"}', 'ping:p1', `text:${mid}`, 'ping:p2', 'text:frag-mented', 'bin:éA', `text:${big}`, 'text:', 'close:1001:going away'];

  it('reads every frame kind, whole or however the stream is cut into chunks', () => {
    const whole = reader();
    whole.r.push(stream);
    expect(whole.got).toEqual(want);
    // Every cut point in the first 400 bytes (headers split at each byte), and a few chunk sizes over the whole.
    for (let cut = 1; cut < 400; cut++) {
      const t = reader();
      t.r.push(stream.subarray(0, cut));
      t.r.push(stream.subarray(cut));
      expect(t.got, `cut at ${cut}`).toEqual(want);
    }
    for (const size of [1, 3, 7, 64, 1000, 16_384]) {
      const t = reader();
      for (let o = 0; o < stream.length; o += size) t.r.push(stream.subarray(o, o + size));
      expect(t.got, `chunks of ${size}`).toEqual(want);
    }
  });

  it('reads text that is not UTF-8 with U+FFFD, and a close frame without a code as 1005', () => {
    const t = reader();
    t.r.push(Buffer.concat([serverFrame(0x1, Buffer.from([0x7b, 0xff, 0x7d])), serverFrame(OP_CLOSE, '')]));
    expect(t.got).toEqual(['text:{\uFFFD}', 'close:1005:']);
  });

  it('keeps what it hands out apart from chunks reused later', () => {
    const t = reader();
    const chunk = Buffer.concat([serverFrame(0x1, 'one', { fin: false }), serverFrame(0x0, 'two', { fin: false })]);
    t.r.push(chunk);
    chunk.fill(0x21);
    t.r.push(serverFrame(0x0, '!'));
    expect(t.got).toEqual(['text:onetwo!']);
  });

  const refusals: [string, Buffer, number, RegExp][] = [
    ['a frame over maxPayload, by its header alone', serverFrame(0x1, 'x'.repeat(101)).subarray(0, 4), 1009, /over 100 bytes/],
    ['fragments adding up to more than maxPayload', Buffer.concat([serverFrame(0x1, 'x'.repeat(60), { fin: false }), serverFrame(0x0, 'x'.repeat(60))]), 1009, /over 100 bytes/],
    ['a masked frame', serverFrame(0x1, 'hi', { masked: true }), 1002, /masked/],
    ['RSV1 (compression not negotiated)', serverFrame(0x1, 'hi', { rsv: 4 }), 1002, /RSV/],
    ['an unknown data opcode', serverFrame(0x3, 'hi'), 1002, /opcode 3/],
    ['an unknown control opcode', serverFrame(0xb, 'hi'), 1002, /opcode 11/],
    ['a fragmented ping', serverFrame(OP_PING, 'hi', { fin: false }), 1002, /control/],
    ['a control frame over 125 bytes', serverFrame(OP_PING, 'x'.repeat(126)), 1002, /control/],
    ['a continuation with no message', serverFrame(0x0, 'hi'), 1002, /continuation/],
    ['a new message inside a fragmented one', Buffer.concat([serverFrame(0x1, 'a', { fin: false }), serverFrame(0x1, 'b')]), 1002, /inside/],
    ['a close frame of one byte', serverFrame(OP_CLOSE, Buffer.from([3])), 1002, /one byte/],
    ['a 64-bit length over 2^53', Buffer.from([0x81, 127, 0xff, 0, 0, 0, 0, 0, 0, 0]), 1009, /2\^53/],
    ['a message in more frames than FRAGMENTS_MAX (empty ones)', Buffer.concat([serverFrame(0x1, 'a', { fin: false }), ...Array.from({ length: FRAGMENTS_MAX }, () => serverFrame(0x0, '', { fin: false }))]), 1009, /more than 4096 frames/],
  ];
  it.each(refusals)('refuses %s and takes nothing more', (_what, bytes, status, message) => {
    const t = reader(100);
    let err: unknown;
    try {
      t.r.push(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FrameError);
    expect((err as FrameError).status).toBe(status);
    expect((err as FrameError).message).toMatch(message);
    t.r.push(serverFrame(0x1, 'after'));
    expect(t.got).not.toContain('text:after');
  });
});

describe('clientFrame', () => {
  it('masks the payload and writes each length form', () => {
    const mask = Buffer.from([1, 2, 3, 4]);
    for (const n of [0, 5, 125, 126, 65_535, 65_536]) {
      const payload = Buffer.alloc(n, 0x61);
      const f = clientFrame(0x1, payload, mask);
      expect(f[0]).toBe(0x81);
      expect(f[1]! & 0x80).toBe(0x80);
      const short = f[1]! & 0x7f;
      const [length, head] = short === 126 ? [f.readUInt16BE(2), 4] : short === 127 ? [Number(f.readBigUInt64BE(2)), 10] : [short, 2];
      expect(length).toBe(n);
      expect(f.subarray(head, head + 4)).toEqual(mask);
      const unmasked = Buffer.from(f.subarray(head + 4).map((b, i) => b ^ mask[i & 3]!));
      expect(unmasked).toEqual(payload);
    }
  });
});
