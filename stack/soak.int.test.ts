// The short form of the soak and chaos test, as CI runs it: 2 minutes of traffic at 10 x the live rate with one of
// each fault (writer and metrics worker killed, broker and PostgreSQL restarted, exchange connection dropped), on
// private services; every final check must pass (exit 0). It needs the PostgreSQL 15 binaries, root (initdb runs as
// the postgres user) and the Kafka jars that scripts/services.sh installs, plus the recorded captures.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { missingRecordings } from '../test/binance-server.ts';
import { privatePostgresMissing } from '../test/private-postgres.ts';
import { soak } from './soak.ts';

const kafkaJars = `${process.env.TICKWATCH_HOME ?? `${homedir()}/.cache/tickwatch`}/kafka/lib`;
const kafkaMissing = existsSync(kafkaJars) ? undefined : `needs the Kafka jars in ${kafkaJars}: bash scripts/services.sh install`;
if (kafkaMissing) console.warn(`[skipped] ${kafkaMissing}`);
const skip = missingRecordings() ?? privatePostgresMissing() ?? kafkaMissing;

describe.skipIf(skip)('soak and chaos, short form', () => {
  it('2 minutes at 10 x live with every fault: nothing lost or doubled, bars exact, faults visible, clean stop', async () => {
    const lines: string[] = [];
    const code = await soak({ minutes: 2, rateX: 10, keep: false, out: (l) => lines.push(l) });
    const report = lines.join('\n');
    console.log(report);
    expect(report).toMatch(/PASS {2}raw tables == produced set/);
    expect(report).toMatch(/PASS {2}bars_1m == independent computation/);
    expect(report).toMatch(/PASS {2}every fault visible in \/metrics: 5 of 5/);
    expect(code, report).toBe(0);
  }, 420_000);
});
