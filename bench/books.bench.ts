// Order-book benchmark, one core: the recorded depth streams (Binance spot and USD-M diffs with their REST snapshots,
// Coinbase level2, Gemini l2) replayed from memory as fast as possible through parse + validate + apply + publish
// (top 20 levels per side on every change, encoded for Kafka), beside JSON.parse alone over the same frames.
//   npm run bench:books            (ROUNDS=N, best of N; default 3)
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BinanceBooks } from '../ingestion/book/binance-depth.ts';
import { readCryptofeedCapture } from '../ingestion/book/cryptofeed-capture.ts';
import type { VenueOutput } from '../ingestion/book/output.ts';
import { readCapture } from '../ingestion/capture.ts';
import { CoinbaseSession } from '../ingestion/coinbase/session.ts';
import { GeminiSession } from '../ingestion/gemini/session.ts';

const DATA = fileURLToPath(new URL('../../shared/data', import.meta.url));
if (!existsSync(`${DATA}/binance-spot`)) {
  process.stderr.write(`needs the recorded captures in ${DATA}\n`);
  process.exit(0);
}
const rounds = Number(process.env.ROUNDS ?? 3);
const DEPTH = 20;

interface Frame {
  readonly text: string;
  readonly receiveTimeUs: number;
  /** The venue symbol of a REST snapshot line. */
  readonly snapshotOf?: string;
}

async function binanceFrames(files: string[], symbol: string): Promise<Frame[]> {
  const out: Frame[] = [];
  for (const f of files) {
    for await (const x of readCapture(`${DATA}/${f}`)) {
      if (x.text.startsWith('{"lastUpdateId"')) out.push({ text: x.text, receiveTimeUs: x.receiveTimeUs, snapshotOf: symbol });
      else if (x.text.includes('@depth')) out.push({ text: x.text, receiveTimeUs: x.receiveTimeUs });
    }
  }
  return out;
}

const spot = [
  ...(await binanceFrames(['binance-spot/btcusdt_20240808.gz', 'binance-spot/btcusdt_20240809.gz'], 'BTCUSDT')),
  ...(await binanceFrames(['binance-spot/ethusdt_20240808.gz', 'binance-spot/ethusdt_20240809.gz'], 'ETHUSDT')),
];
const usdm = await binanceFrames(['binance-usdm/btcusdt_20240808.gz'], 'BTCUSDT');
const coinbase = readCryptofeedCapture(`${DATA}/cryptofeed/COINBASE.ws.28.0`).frames.filter((f) => /"type":"(l2update|snapshot)"/.test(f.text.slice(0, 40)));
const gemini = readCryptofeedCapture(`${DATA}/cryptofeed/GEMINI.ws.1.0`).frames.filter((f) => f.text.startsWith('{"type":"l2_updates"'));

interface Result {
  updates: number;
  published: number;
  bytes: number;
  seconds: number;
}

/** One pass: every frame through its book keeper; every published book encoded as the producer would. */
function run(frames: readonly Frame[], feed: (f: Frame, out: VenueOutput[]) => void): Result {
  const out: VenueOutput[] = [];
  let published = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (const f of frames) {
    feed(f, out);
    for (let i = 0; i < out.length; i++) {
      const o = out[i]!;
      if (o.kind === 'book') {
        published++;
        bytes += Buffer.byteLength(JSON.stringify(o.record));
      } else if (o.kind === 'rejected' || o.kind === 'gap') throw new Error(`unexpected ${o.kind}: ${JSON.stringify(o)}`);
    }
    out.length = 0;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { updates: frames.length, published, bytes, seconds };
}

function best(make: () => (f: Frame, out: VenueOutput[]) => void, frames: readonly Frame[]): Result {
  let top: Result | undefined;
  for (let r = 0; r < rounds; r++) {
    const res = run(frames, make());
    if (!top || res.seconds < top.seconds) top = res;
  }
  return top!;
}

function parseOnly(frames: readonly Frame[]): number {
  let bestRate = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (const f of frames) JSON.parse(f.text);
    bestRate = Math.max(bestRate, frames.length / ((performance.now() - t0) / 1000));
  }
  return bestRate;
}

const levelCount = (frames: readonly Frame[]) => frames.reduce((n, f) => n + (f.text.match(/\],\[|\[\[/g)?.length ?? 0), 0);

const binance = (market: 'spot' | 'usdm') => () => {
  const books = new BinanceBooks({ market, depth: DEPTH, intervalMs: 0 });
  return (f: Frame, out: VenueOutput[]) => (f.snapshotOf ? books.snapshot(f.snapshotOf, f.text, f.receiveTimeUs, out) : books.frame(f.text, f.receiveTimeUs, out));
};
const session = (S: typeof CoinbaseSession | typeof GeminiSession) => () => {
  const s = new S({ depth: DEPTH, intervalMs: 0 });
  return (f: Frame, out: VenueOutput[]) => s.frame(f.text, f.receiveTimeUs, out);
};

const cases: [string, readonly Frame[], () => (f: Frame, out: VenueOutput[]) => void][] = [
  ['Binance spot @depth@100ms (BTC+ETH)', spot, binance('spot')],
  ['Binance USD-M @depth@0ms (BTC)', usdm, binance('usdm')],
  ['Coinbase level2', coinbase, session(CoinbaseSession)],
  ['Gemini v2 l2', gemini, session(GeminiSession)],
];

const fmt = (n: number) => Math.round(n).toLocaleString('en').padStart(11);
process.stdout.write(`\norder-book benchmark: one core, best of ${rounds}, top ${DEPTH} levels per side published on every change\n`);
process.stdout.write(`  ${'stream'.padEnd(38)} ${'frames'.padStart(8)} ${'JSON.parse/s'.padStart(13)} ${'applied+published/s'.padStart(20)} ${'levels/s'.padStart(12)} ${'books/s'.padStart(11)} ${'ratio'.padStart(6)}\n`);
for (const [name, frames, make] of cases) {
  const parse = parseOnly(frames);
  const r = best(make, frames);
  const rate = r.updates / r.seconds;
  const lv = levelCount(frames);
  process.stdout.write(
    `  ${name.padEnd(38)} ${String(frames.length).padStart(8)} ${fmt(parse)}   ${fmt(rate)}         ${fmt(lv / r.seconds)} ${fmt(r.published / r.seconds)} ${(rate / parse).toFixed(2).padStart(6)}\n`,
  );
}
process.stdout.write('  (ratio = full path / JSON.parse alone; frames include the REST snapshot lines)\n');
