// The shape of one `tickwatch` subcommand; each stage declares its own in its cli.ts and bin/tickwatch.ts lists them.
import type { ParseArgsConfig } from 'node:util';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

export interface CommandContext {
  readonly config: Config;
  readonly log: Logger;
  readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  readonly positionals: string[];
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Full help text, printed by --help and after a flag error. */
  readonly usage: string;
  readonly options: NonNullable<ParseArgsConfig['options']>;
  /** Returns the process exit code. Long-running workers use common/lifecycle.ts and never return. */
  run(ctx: CommandContext): Promise<number>;
}
