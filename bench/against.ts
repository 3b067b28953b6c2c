// One benchmark on an earlier commit and on the working tree, alternately, in one run, so that a change's figures are
// read beside its predecessor's on the same noisy machine:
//   npm run bench:against -- --rev 800b59d [--runs 2] ingest [-- <flags for the benchmark>]
// The earlier commit is checked out with `git worktree` beside the repository (so its ../shared resolves the same),
// shares node_modules when its lockfile is the same (else `npm ci` there), and is removed afterwards.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, symlinkSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const BENCHES = ['ingest', 'write', 'books', 'metrics', 'storage', 'e2e'];

const { values: args, positionals } = parseArgs({
  options: { rev: { type: 'string' }, runs: { type: 'string', default: '1' } },
  allowPositionals: true,
});
const [bench, ...benchArgs] = positionals;
const runs = Number(args.runs);
if (!args.rev || !bench || !BENCHES.includes(bench) || !Number.isInteger(runs) || runs < 1 || runs > 5) {
  console.error(`usage: npm run bench:against -- --rev REV [--runs 1-5] <${BENCHES.join('|')}> [-- flags]`);
  process.exit(2);
}

function git(...a: string[]): string {
  const r = spawnSync('git', a, { cwd: REPO, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${a.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

const commit = git('rev-parse', '--verify', `${args.rev}^{commit}`);
const here = git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--untracked-files=no') ? '+changes' : '');
const tree = resolve(REPO, '..', `tickwatch-bench-${commit.slice(0, 12)}`);

function run(dir: string, label: string): Promise<number> {
  console.log(`\n===== bench:${bench} on ${label} (${dir}) =====`);
  return new Promise((done) => {
    const child = spawn('npm', ['run', '--silent', `bench:${bench}`, '--', ...benchArgs], { cwd: dir, stdio: 'inherit' });
    child.on('exit', (code) => done(code ?? 1));
  });
}

if (!existsSync(tree)) git('worktree', 'add', '--detach', tree, commit);
try {
  const sameLock = spawnSync('git', ['diff', '--quiet', commit, '--', 'package-lock.json'], { cwd: REPO }).status === 0;
  if (!existsSync(resolve(tree, 'node_modules'))) {
    if (sameLock) symlinkSync(resolve(REPO, 'node_modules'), resolve(tree, 'node_modules'), 'dir');
    else if (spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: tree, stdio: 'inherit' }).status !== 0) throw new Error('npm ci failed in the earlier tree');
  }
  const failed: string[] = [];
  for (let i = 1; i <= runs; i++) {
    if ((await run(tree, `${commit.slice(0, 12)} (earlier), run ${i}`)) !== 0) failed.push(`earlier run ${i}`);
    if ((await run(REPO, `${here} (this tree), run ${i}`)) !== 0) failed.push(`this tree run ${i}`);
  }
  if (failed.length > 0) {
    console.error(`failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
} finally {
  // The shared node_modules is a link: unlinked first, or removing the worktree would empty this tree's own.
  const modules = resolve(tree, 'node_modules');
  if (existsSync(modules) && lstatSync(modules).isSymbolicLink()) unlinkSync(modules);
  git('worktree', 'remove', '--force', tree);
}
