// Where the project's files are, whether this code runs as TypeScript (tsx, vitest) or compiled into dist/ (the
// workers as deployed: `npm run build`, then `node dist/bin/tickwatch.js`): SQL, scripts and recordings stay in the tree.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when this module runs from dist/ (compiled JavaScript, no TypeScript loader). */
export const COMPILED = import.meta.url.endsWith('.js');

/** The repository (or image) root: the directory of package.json. */
export const PROJECT_ROOT = fileURLToPath(new URL(COMPILED ? '../../' : '../', import.meta.url));

export const projectPath = (...parts: string[]): string => join(PROJECT_ROOT, ...parts);

/** Node's arguments before the subcommand that start `tickwatch` compiled (dist/, built by `npm run build`) or under tsx. */
export const tickwatchArgs = (compiled: boolean): string[] => (compiled ? [projectPath('dist/bin/tickwatch.js')] : ['--import', 'tsx', projectPath('bin/tickwatch.ts')]);

/** How to start `tickwatch` in a child process the way this one runs. */
export const TICKWATCH_ARGS: readonly string[] = tickwatchArgs(COMPILED);
