// The CLI as a user runs it, as a child process with exactly the environment given; its output is collected.
import { spawn } from 'node:child_process';
import { TICKWATCH_ARGS } from '../common/paths.ts';

export function tickwatch(args: readonly string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [...TICKWATCH_ARGS, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, output: () => out };
}
