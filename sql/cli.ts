// `tickwatch migrate`: applies the schema to DATABASE_URL.
import type { Command } from '../common/cli.ts';
import { createClient, pgSession } from '../common/db.ts';
import { migrate, TimescaleUnavailableError } from './migrate.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply the database schema (idempotent; TimescaleDB when available)',
  usage: 'usage: tickwatch migrate\n\nApplies sql/migrations to DATABASE_URL in order, each once, then syncs storage policies.',
  options: {},
  async run({ config, log }) {
    const client = createClient(config, 'tickwatch-migrate', log);
    await client.connect();
    try {
      const r = await migrate(pgSession(client), config, log);
      const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
      log.info({ applied: r.applied, alreadyApplied: r.alreadyApplied.length, timescaledb: r.timescaledb, serverVersion: version }, 'schema up to date');
      return 0;
    } catch (err) {
      if (!(err instanceof TimescaleUnavailableError)) throw err;
      process.stderr.write(`tickwatch migrate: ${err.message}\n`);
      return 2;
    } finally {
      await client.end();
    }
  },
};
