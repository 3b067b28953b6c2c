// Alert mail policy (pure): per rule and symbol, the first firing mails at once and opens a cooldown; firings during
// the cooldown are held and sent as one digest when it ends; when the condition clears, one resolved mail (carrying any
// held firings). A storm therefore sends at most one mail per rule and symbol per cooldown, plus the resolved mail.

export interface Firing {
  readonly rule: string;
  readonly exchange: string;
  readonly market: string;
  readonly symbol: string;
  readonly bucketMs: number;
  readonly observed: number;
  readonly threshold: number;
}

export interface AlertMail {
  readonly kind: 'firing' | 'digest' | 'resolved';
  readonly key: string;
  readonly rule: string;
  readonly symbol: string;
  /** The firings this mail reports (for resolved: the ones held since the last mail, possibly none). */
  readonly firings: readonly Firing[];
  /** For resolved: the bucket in which the condition was seen clear. */
  readonly clearedBucketMs?: number;
}

interface KeyState {
  active: boolean;
  cooldownUntilMs: number;
  held: Firing[];
}

/** One rule and stream's state as stored (alert_policy_state), so a restarted worker carries on where it stopped. */
export interface StoredAlertState {
  readonly key: string;
  readonly active: boolean;
  /** null: no mail sent yet. */
  readonly cooldownUntilMs: number | null;
  readonly held: readonly Firing[];
}

export const alertKey = (f: Pick<Firing, 'rule' | 'exchange' | 'market' | 'symbol'>) => `${f.rule}|${f.exchange}|${f.market}|${f.symbol}`;

export class AlertPolicy {
  private readonly states = new Map<string, KeyState>();
  private readonly dirty = new Set<string>();

  constructor(private readonly cooldownMs: number) {}

  firing(f: Firing, nowMs: number): AlertMail[] {
    const key = alertKey(f);
    const s = this.states.get(key) ?? { active: false, cooldownUntilMs: -Infinity, held: [] };
    this.states.set(key, s);
    this.dirty.add(key);
    s.active = true;
    if (nowMs >= s.cooldownUntilMs) {
      s.cooldownUntilMs = nowMs + this.cooldownMs;
      return [{ kind: 'firing', key, rule: f.rule, symbol: f.symbol, firings: [f] }];
    }
    s.held.push(f);
    return [];
  }

  /** The condition was evaluated and found clear. */
  clear(f: Pick<Firing, 'rule' | 'exchange' | 'market' | 'symbol' | 'bucketMs'>, _nowMs: number): AlertMail[] {
    const key = alertKey(f);
    const s = this.states.get(key);
    if (!s?.active) return [];
    this.dirty.add(key);
    const held = s.held;
    s.active = false;
    s.held = [];
    return [{ kind: 'resolved', key, rule: f.rule, symbol: f.symbol, firings: held, clearedBucketMs: f.bucketMs }];
  }

  /** Digests whose cooldown has ended. Call periodically. */
  due(nowMs: number): AlertMail[] {
    const out: AlertMail[] = [];
    for (const [key, s] of this.states) {
      if (s.held.length === 0 || nowMs < s.cooldownUntilMs) continue;
      const held = s.held;
      s.held = [];
      s.cooldownUntilMs = nowMs + this.cooldownMs;
      this.dirty.add(key);
      out.push({ kind: 'digest', key, rule: held[0]!.rule, symbol: held[0]!.symbol, firings: held });
    }
    return out;
  }

  /** The states changed since the last call: the caller stores them after sending the mails they account for. */
  changed(): StoredAlertState[] {
    const out: StoredAlertState[] = [];
    for (const key of this.dirty) {
      const s = this.states.get(key)!;
      out.push({ key, active: s.active, cooldownUntilMs: Number.isFinite(s.cooldownUntilMs) ? s.cooldownUntilMs : null, held: [...s.held] });
    }
    this.dirty.clear();
    return out;
  }

  /**
   * A restarted worker loads what its predecessor stored: open conditions stay active (their resolved mail will come),
   * cooldowns run on and held firings go out in the next digest.
   */
  load(states: readonly StoredAlertState[]): void {
    for (const s of states) this.states.set(s.key, { active: s.active, cooldownUntilMs: s.cooldownUntilMs ?? -Infinity, held: [...s.held] });
  }

  isActive(key: string): boolean {
    return this.states.get(key)?.active ?? false;
  }
}
