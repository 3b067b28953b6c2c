import { describe, expect, it } from 'vitest';
import { allCommands, loadCommand, STAGES } from './commands.ts';

describe('tickwatch commands', () => {
  it('finds each stage its commands by the names it lists, and every command once', async () => {
    for (const s of STAGES) expect((await s.load()).map((c) => c.name)).toEqual(s.names);
    const names = (await allCommands()).map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect((await loadCommand(name))?.name).toBe(name);
    expect(await loadCommand('nope')).toBeUndefined();
    expect(await loadCommand('toString')).toBeUndefined();
  });
});
