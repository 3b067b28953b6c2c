// A check the Coinbase and Gemini session tests share: each bad frame, alone, is rejected with its reason and never
// throws (the session goes on with the next frame).
import { expect } from 'vitest';
import type { VenueSession } from '../router.ts';
import type { VenueOutput } from './output.ts';

export function expectEachRejected(session: VenueSession, bad: readonly (readonly [string, RegExp])[], receiveTimeUs: number): void {
  for (const [text, reason] of bad) {
    const o: VenueOutput[] = [];
    expect(() => session.frame(text, receiveTimeUs, o)).not.toThrow();
    expect(o).toHaveLength(1);
    expect(o[0]!.kind).toBe('rejected');
    expect((o[0] as { reason: string }).reason).toMatch(reason);
  }
}
