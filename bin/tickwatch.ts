#!/usr/bin/env node
// The one executable: `tickwatch <command> [flags]`. Each stage contributes its commands from its own cli.ts.
// The shebang serves the compiled file that package.json's bin names (dist/bin/tickwatch.js); the source runs with
// `npx tsx bin/tickwatch.ts`.
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../common/config.ts';
import { createLogger } from '../common/log.ts';
import type { Command } from '../common/cli.ts';
import { allCommands, loadCommand } from './commands.ts';

function usage(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: tickwatch <command> [flags]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    "Configuration comes from environment variables (see .env.example). 'tickwatch <command> --help' for flags.",
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage(await allCommands())}\n`);
    return name === undefined ? 1 : 0;
  }
  const command = await loadCommand(name);
  if (!command) {
    process.stderr.write(`unknown command '${name}'\n\n${usage(await allCommands())}\n`);
    return 1;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${command.usage}\n`);
    return 1;
  }
  if (parsed.values.help) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  const config = loadConfigOrExit();
  const log = createLogger(config.logLevel, command.name);
  return command.run({ config, log, values: parsed.values, positionals: parsed.positionals });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tickwatch: ${(err as Error).message ?? String(err)}\n`);
    process.exit(1);
  },
);
