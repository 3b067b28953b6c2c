import { defineConfig } from 'vitest/config';

// Two projects: unit tests need nothing; integration tests (*.int.test.ts) talk to real Kafka and PostgreSQL.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{common,ingestion,consumer,metrics,sql,grafana,docker,bin,stack,test}/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
          testTimeout: 60_000,
          // Starting the in-process TimescaleDB takes seconds, more on a busy machine.
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['**/*.int.test.ts'],
          exclude: ['**/node_modules/**'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Integration tests share one broker and one database: run files one after another.
          fileParallelism: false,
          setupFiles: ['test/cleanup.ts'],
        },
      },
    ],
  },
});
