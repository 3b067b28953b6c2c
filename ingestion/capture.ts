// Capture files, the format of ../shared/data: one line per received frame, `<receive time in ns since epoch> <raw
// text>`, gzip or plain. Reading yields frames in file order; writing appends to one file per symbol and UTC day.
import { createReadStream, createWriteStream, mkdirSync, openSync, readSync, closeSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export interface CaptureFrame {
  /** Receive time as written, ns since epoch (beyond 2^53, so kept as bigint). */
  readonly receiveNs: bigint;
  /** Receive time in µs since epoch, the unit of the records. */
  readonly receiveTimeUs: number;
  readonly text: string;
}

/** Parses one capture line; undefined for a line that is not `<digits> <text>`. */
export function parseCaptureLine(line: string): CaptureFrame | undefined {
  const sp = line.indexOf(' ');
  if (sp < 10 || sp > 25) return undefined;
  const ns = line.slice(0, sp);
  if (!/^\d+$/.test(ns)) return undefined;
  const text = line.slice(sp + 1);
  if (text.length === 0) return undefined;
  return { receiveNs: BigInt(ns), receiveTimeUs: Number(ns.slice(0, -3)), text };
}

export function formatCaptureLine(receiveNs: bigint, text: string): string {
  // A frame is one line: raw newlines inside it (never valid JSON whitespace from Binance) are escaped away.
  return `${receiveNs} ${text.includes('\n') ? text.replace(/\r?\n/g, ' ') : text}\n`;
}

function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

export interface CaptureReader extends AsyncIterable<CaptureFrame> {
  /** Compressed bytes read so far (for progress). */
  readonly bytesRead: () => number;
  /** Lines that were not capture lines. */
  readonly badLines: () => number;
}

/** Reads a capture file, gzip or plain; a truncated gzip tail (a recorder killed mid-write) ends the file quietly. */
export function readCapture(path: string): CaptureReader {
  let bad = 0;
  const raw = createReadStream(path, { highWaterMark: 256 * 1024 });
  let input: Readable = raw;
  if (isGzip(path)) {
    const gunzip = createGunzip();
    gunzip.on('error', () => gunzip.push(null));
    input = raw.pipe(gunzip);
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  return {
    bytesRead: () => raw.bytesRead,
    badLines: () => bad,
    async *[Symbol.asyncIterator]() {
      for await (const line of lines) {
        if (line.length === 0) continue;
        const f = parseCaptureLine(line);
        if (f) yield f;
        else bad++;
      }
    },
  };
}

/** Merges several capture files by receive time (each file is in receive order already). */
export async function* mergeCaptures(readers: readonly CaptureReader[]): AsyncGenerator<CaptureFrame> {
  const its = readers.map((r) => r[Symbol.asyncIterator]());
  const heads = await Promise.all(its.map((it) => it.next()));
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      if (h.done) continue;
      if (best < 0 || h.value.receiveNs < (heads[best]!.value as CaptureFrame).receiveNs) best = i;
    }
    if (best < 0) return;
    yield heads[best]!.value as CaptureFrame;
    heads[best] = await its[best]!.next();
  }
}

/** The symbol a frame belongs to, from `"stream":"btcusdt@..."`, without parsing the JSON. */
export function frameSymbol(text: string): string | undefined {
  const m = /^\{"stream":"([a-z0-9]+)@/.exec(text);
  return m?.[1];
}

const day = (receiveNs: bigint): string => new Date(Number(receiveNs / 1_000_000n)).toISOString().slice(0, 10).replaceAll('-', '');

/** Writes frames to `<dir>/<symbol>_<yyyymmdd>.gz` (UTC day of the receive time), rotating at midnight. */
export class CaptureWriter {
  private readonly open = new Map<string, { day: string; gz: Gzip; file: WriteStream; path: string }>();
  private lines = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  get written(): number {
    return this.lines;
  }

  write(receiveNs: bigint, text: string): void {
    const symbol = frameSymbol(text) ?? 'other';
    const d = day(receiveNs);
    let w = this.open.get(symbol);
    if (w && w.day !== d) {
      w.gz.end();
      w = undefined;
    }
    if (!w) {
      const path = join(this.dir, `${symbol}_${d}.gz`);
      const gz = createGzip();
      const file = createWriteStream(path, { flags: 'a' });
      gz.pipe(file);
      w = { day: d, gz, file, path };
      this.open.set(symbol, w);
    }
    w.gz.write(formatCaptureLine(receiveNs, text));
    this.lines++;
  }

  /** Files currently open. */
  paths(): string[] {
    return [...this.open.values()].map((w) => w.path);
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(
      all.map(
        (w) =>
          new Promise<void>((resolve) => {
            w.file.once('close', () => resolve());
            w.gz.end();
          }),
      ),
    );
  }
}
