// `.env.example` documents every variable of the config schema, each with the schema's own default.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENV_VARIABLES, loadConfig } from '../common/config.ts';

const ENV_EXAMPLE = fileURLToPath(new URL('../.env.example', import.meta.url));

/** KEY=value lines, as Compose's env_file and a shell `set -a; . .env` read them (comments and blanks skipped). */
function parseEnvFile(text: string): { entries: [string, string][]; malformed: string[] } {
  const entries: [string, string][] = [];
  const malformed: string[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(t);
    if (!m) malformed.push(`line ${i + 1}: ${line}`);
    else entries.push([m[1]!, m[2]!.replace(/^(['"])(.*)\1$/, '$2')]);
  }
  return { entries, malformed };
}

describe('.env.example', () => {
  const { entries, malformed } = parseEnvFile(readFileSync(ENV_EXAMPLE, 'utf8'));
  const names = entries.map(([k]) => k);

  it('has only KEY=value lines, each variable once', () => {
    expect(malformed, 'lines that are neither comments nor KEY=value').toEqual([]);
    expect(names.filter((n, i) => names.indexOf(n) !== i), 'variables listed twice').toEqual([]);
  });

  it('lists exactly the variables of envSchema', () => {
    const schema = new Set<string>(ENV_VARIABLES);
    const listed = new Set(names);
    expect(ENV_VARIABLES.filter((v) => !listed.has(v)), 'variables of common/config.ts envSchema missing from .env.example').toEqual([]);
    expect(names.filter((n) => !schema.has(n)), 'variables in .env.example that envSchema does not define').toEqual([]);
  });

  it('shows the defaults: as an environment it gives the same config as an empty one', () => {
    expect(loadConfig(Object.fromEntries(entries))).toEqual(loadConfig({}));
  });
});
