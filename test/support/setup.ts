// Preloaded by bun test (bunfig.toml): stops the shared test services after the last test.
import { afterAll } from 'bun:test';
import { stopPostgres } from './postgres.ts';

afterAll(async () => {
  await stopPostgres();
});
