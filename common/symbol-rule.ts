// SYMBOLS as a rule instead of a list: which of the exchange's instruments to stream, e.g. `rule:quote=USDT`. Pure
// code: the syntax, its validation and the match against one instrument; ingestion/instruments.ts applies it to the
// exchange's instrument list. Config validation uses it, so every stage reads the same rule.
//
// Syntax: `rule:` and clauses separated by `;`, all of which must hold; a clause is `key=VALUE|VALUE...` (any of):
//   quote=USDT|FDUSD   quote asset          base=BTC|ETH   base asset
//   status=TRADING     instrument status (default TRADING: a halted or delisted symbol is not streamed)
//   exclude=USDCUSDT   symbols left out     include=BTCUSDT  symbols taken whatever quote and base say
// Values are upper-case letters and digits (case is folded); each key at most once; quote or base is required, so a
// rule never means "every instrument" by accident.

export interface SymbolRule {
  readonly quote?: readonly string[];
  readonly base?: readonly string[];
  readonly status: readonly string[];
  readonly exclude: readonly string[];
  readonly include: readonly string[];
  /** The rule as written, for logs. */
  readonly text: string;
}

/** One instrument of the exchange's list (exchangeInfo `symbols[]`: symbol, status, baseAsset, quoteAsset). */
export interface Instrument {
  readonly symbol: string;
  readonly status: string;
  readonly baseAsset: string;
  readonly quoteAsset: string;
}

export const RULE_PREFIX = 'rule:';
const KEYS = ['quote', 'base', 'status', 'exclude', 'include'] as const;
type Key = (typeof KEYS)[number];
const VALUE = /^[A-Z0-9_]{1,20}$/;

export function isSymbolRule(text: string): boolean {
  return text.trim().toLowerCase().startsWith(RULE_PREFIX);
}

/** Parses a rule; returns its problem as text when it is not one. */
export function parseSymbolRule(text: string): SymbolRule | string {
  const t = text.trim();
  if (!isSymbolRule(t)) return `a rule starts with ${RULE_PREFIX}`;
  const body = t.slice(RULE_PREFIX.length).trim();
  if (body === '') return 'the rule is empty: write e.g. rule:quote=USDT';
  const seen = new Map<Key, string[]>();
  for (const clause of body.split(';').map((c) => c.trim())) {
    if (clause === '') return 'empty clause (two ; in a row, or a trailing ;)';
    const eq = clause.indexOf('=');
    if (eq <= 0) return `clause "${clause}" must look like key=VALUE`;
    const key = clause.slice(0, eq).trim().toLowerCase();
    if (!(KEYS as readonly string[]).includes(key)) return `unknown key "${key}" (keys: ${KEYS.join(', ')})`;
    if (seen.has(key as Key)) return `key "${key}" given twice (list alternatives with |)`;
    const values = clause.slice(eq + 1).split('|').map((v) => v.trim().toUpperCase());
    const bad = values.find((v) => !VALUE.test(v));
    if (bad !== undefined) return `value "${bad}" of ${key} must be letters and digits`;
    seen.set(key as Key, values);
  }
  if (!seen.has('quote') && !seen.has('base')) return 'a rule needs quote= or base= (a rule for every instrument is not allowed)';
  return {
    quote: seen.get('quote'),
    base: seen.get('base'),
    status: seen.get('status') ?? ['TRADING'],
    exclude: seen.get('exclude') ?? [],
    include: seen.get('include') ?? [],
    text: t,
  };
}

/** Whether the rule streams this instrument. */
export function ruleMatches(rule: SymbolRule, i: Instrument): boolean {
  if (rule.exclude.includes(i.symbol)) return false;
  if (!rule.status.includes(i.status)) return false;
  if (rule.include.includes(i.symbol)) return true;
  return (rule.quote === undefined || rule.quote.includes(i.quoteAsset)) && (rule.base === undefined || rule.base.includes(i.baseAsset));
}

/** The symbols the rule selects from an instrument list, sorted, once each. */
export function selectSymbols(rule: SymbolRule, instruments: readonly Instrument[]): string[] {
  return [...new Set(instruments.filter((i) => ruleMatches(rule, i)).map((i) => i.symbol))].sort();
}
