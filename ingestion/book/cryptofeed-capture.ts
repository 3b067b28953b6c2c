// Reader of cryptofeed's recorded sessions (../shared/data/cryptofeed): line 1 `<url> <-> <connect time>`, subscription
// lines `<url> <- <time>: <json sent>`, then one `<receive time, epoch seconds>: <raw message>` per received frame.
import { readFileSync } from 'node:fs';

export interface CryptofeedFrame {
  /** Receive time, µs since the epoch. */
  readonly receiveTimeUs: number;
  readonly text: string;
}

export interface CryptofeedCapture {
  readonly url: string;
  /** What was sent to subscribe, as recorded. */
  readonly sent: readonly string[];
  readonly frames: readonly CryptofeedFrame[];
  /** Lines in neither form. */
  readonly badLines: number;
}

const FRAME = /^(\d{9,11}(?:\.\d+)?): (.*)$/;

export function parseCryptofeedCapture(text: string): CryptofeedCapture {
  const lines = text.split('\n');
  const url = (lines[0] ?? '').split(' <-> ')[0] ?? '';
  const sent: string[] = [];
  const frames: CryptofeedFrame[] = [];
  let badLines = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.length === 0) continue;
    const m = FRAME.exec(line);
    if (m) {
      frames.push({ receiveTimeUs: Math.round(Number(m[1]) * 1e6), text: m[2]! });
      continue;
    }
    const sub = line.indexOf(' <- ');
    const colon = line.indexOf(': ', sub);
    if (sub > 0 && colon > 0) sent.push(line.slice(colon + 2));
    else badLines++;
  }
  return { url, sent, frames, badLines };
}

export function readCryptofeedCapture(path: string): CryptofeedCapture {
  return parseCryptofeedCapture(readFileSync(path, 'utf8'));
}
