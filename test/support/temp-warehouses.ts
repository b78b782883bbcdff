import { afterEach } from 'bun:test';
import { rmSync } from 'node:fs';
import type { Warehouse } from '../../src/warehouse/index.ts';

/**
 * Folders and warehouses a test file creates, closed and removed after each test: push onto
 * `dirs` and `open`; a test that closes a warehouse itself empties `open` (`open.length = 0`).
 */
export function tempWarehouses(): { dirs: string[]; open: Warehouse[] } {
  const t = { dirs: [] as string[], open: [] as Warehouse[] };
  afterEach(async () => {
    for (const w of t.open) await w.close();
    for (const d of t.dirs) rmSync(d, { recursive: true, force: true });
    t.dirs.length = 0;
    t.open.length = 0;
  });
  return t;
}
