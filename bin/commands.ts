// Where each `tickwatch` command lives. A stage's module is imported only when one of its commands runs, so a worker
// process carries its own stage's dependencies and not the others' (the ingestion worker does not load pg, nodemailer
// or the metrics code: about 18 MB less RSS before the first message).
import type { Command } from '../common/cli.ts';

export interface Stage {
  /** Its commands' names, in the order `tickwatch --help` lists them. */
  readonly names: readonly string[];
  readonly load: () => Promise<readonly Command[]>;
}

export const STAGES: readonly Stage[] = [
  {
    names: ['run', 'doctor'],
    load: async () => {
      const m = await import('../stack/cli.ts');
      return [m.runCommand, m.doctorCommand];
    },
  },
  { names: ['migrate'], load: async () => [(await import('../sql/cli.ts')).migrateCommand] },
  { names: ['write'], load: async () => [(await import('../consumer/cli.ts')).writeCommand] },
  { names: ['ingest', 'replay', 'record', 'backfill'], load: async () => (await import('../ingestion/cli.ts')).ingestionCommands },
  {
    names: ['metrics', 'export'],
    load: async () => {
      const m = await import('../metrics/cli.ts');
      return [m.metricsCommand, m.exportCommand];
    },
  },
];

/** The command called `name`, its stage alone loaded; undefined when there is none. */
export async function loadCommand(name: string): Promise<Command | undefined> {
  const stage = STAGES.find((s) => s.names.includes(name));
  return stage === undefined ? undefined : (await stage.load()).find((c) => c.name === name);
}

/** Every command (for the usage text), every stage loaded. */
export async function allCommands(): Promise<readonly Command[]> {
  return (await Promise.all(STAGES.map((s) => s.load()))).flat();
}
