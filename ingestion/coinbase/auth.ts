// Coinbase Exchange's signed subscription (docs.cdp.coinbase.com/exchange/websocket-feed/authentication): the
// subscribe message carries key, passphrase, timestamp (epoch seconds) and signature =
// base64(HMAC-SHA256(base64-decoded secret, timestamp + 'GET' + '/users/self/verify')). Pure: the time is passed in.
import { createHmac } from 'node:crypto';

export interface CoinbaseCredentials {
  readonly key: string;
  /** Base64, as Coinbase issues it. */
  readonly secret: string;
  readonly passphrase: string;
}

/** The request a websocket subscription is signed as. */
const SIGNED_REQUEST = 'GET/users/self/verify';

export function coinbaseSignature(secretBase64: string, timestamp: string): string {
  return createHmac('sha256', Buffer.from(secretBase64, 'base64')).update(timestamp + SIGNED_REQUEST).digest('base64');
}

/** The fields that sign one subscribe message; `nowMs` must be fresh (Coinbase refuses a timestamp 30 s off). */
export function signedFields(c: CoinbaseCredentials, nowMs: number): { key: string; passphrase: string; timestamp: string; signature: string } {
  const timestamp = String(Math.floor(nowMs / 1000));
  return { key: c.key, passphrase: c.passphrase, timestamp, signature: coinbaseSignature(c.secret, timestamp) };
}
