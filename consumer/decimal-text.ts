// Decimal text inside a record's bytes, for the writer's fast path (tick-rows.ts): the tick schema's isDecimal and
// compareDecimals (common/tick-schema.ts) on a byte range, without making a string.

const ZERO = 48;
const NINE = 57;
const DOT = 46;

/** /^\d{1,20}(\.\d{1,18})?$/ (isDecimal), and with `positive` also a non-zero digit (isPositiveDecimal). */
export function isDecimalAt(b: Uint8Array, s: number, e: number, positive: boolean): boolean {
  let i = s;
  let nonZero = false;
  while (i < e && b[i]! >= ZERO && b[i]! <= NINE) {
    if (b[i] !== ZERO) nonZero = true;
    i++;
  }
  const intDigits = i - s;
  if (intDigits < 1 || intDigits > 20) return false;
  if (i < e) {
    if (b[i] !== DOT) return false;
    const f = ++i;
    while (i < e && b[i]! >= ZERO && b[i]! <= NINE) {
      if (b[i] !== ZERO) nonZero = true;
      i++;
    }
    if (i !== e || i - f < 1 || i - f > 18) return false;
  }
  return !positive || nonZero;
}

/**
 * compareDecimals (common/tick-schema.ts) of the checked decimal texts b[s1, e1) and b[s2, e2): -1, 0 or 1. The same
 * rule on bytes, tested against it.
 */
export function compareDecimalsAt(b: Uint8Array, s1: number, e1: number, s2: number, e2: number): number {
  let d1 = s1;
  while (d1 < e1 && b[d1] !== DOT) d1++;
  let d2 = s2;
  while (d2 < e2 && b[d2] !== DOT) d2++;
  while (s1 < d1 && b[s1] === ZERO) s1++;
  while (s2 < d2 && b[s2] === ZERO) s2++;
  if (d1 - s1 !== d2 - s2) return d1 - s1 < d2 - s2 ? -1 : 1;
  for (let i = 0; i < d1 - s1; i++) {
    const d = b[s1 + i]! - b[s2 + i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  const n = Math.max(e1 - d1, e2 - d2);
  for (let i = 1; i < n; i++) {
    const d = (d1 + i < e1 ? b[d1 + i]! : ZERO) - (d2 + i < e2 ? b[d2 + i]! : ZERO);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}
