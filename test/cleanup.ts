// Setup of every integration test file: the topics named for its tests are deleted after it (test/services.ts).
import { afterAll } from 'vitest';
import { deleteTestTopics } from './services.ts';

afterAll(deleteTestTopics, 60_000);
