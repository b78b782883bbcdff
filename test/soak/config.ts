/** The soak's ducktail config, its API client (NDJSON, no row cap) and its seeded randomness. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export { seeded } from '../support/random.ts';

export interface SoakConfigInput {
  dir: string;
  url: string;
  port: number;
  kafka: string[] | null;
  prefix: string;
  s3: { endpoint: string; bucket: string };
}

/** Writes ducktail.toml for the soak: orders only, tiering with warm on disk and cold on s3rver. */
export function writeSoakConfig(c: SoakConfigInput): string {
  const path = join(c.dir, 'ducktail.toml');
  const bus = c.kafka
    ? `[bus]\nkind = "kafka"\nbrokers = ${JSON.stringify(c.kafka)}\ntopic_prefix = "${c.prefix}"\npartitions = 3\n` +
      // The mock keeps 5 MB per partition and answers OFFSET_OUT_OF_RANGE behind that (docs/TEAM-NOTES.md):
      // about 1 KB per uncompressed message, and a killed initial copy publishes its 10,000 rows again.
      `replication_factor = 3\nidempotent = false\nmax_lag = 3000\ncompression = "gzip"\n`
    : `[bus]\nkind = "inline"\n`;
  writeFileSync(
    path,
    `[source]\nurl = "${c.url}"\nslot = "soak"\npublication = "soak"\ntables = ["public.orders"]\n` +
      `status_interval_ms = 500\nheartbeat_interval_s = 5\nconnect_timeout_s = 5\n` +
      bus +
      `[warehouse]\npath = "${join(c.dir, 'w.duckdb')}"\nbatch_rows = 2000\nbatch_ms = 100\nmemory_limit = "512MB"\nthreads = 1\n` +
      `[tiering]\nhot_days = 7\nwarm_days = 30\nwarm_dir = "${join(c.dir, 'warm')}"\ncold_url = "s3://${c.s3.bucket}/lake"\n` +
      `s3_endpoint = "${c.s3.endpoint}"\ns3_access_key_id = "S3RVER"\ns3_secret_access_key = "S3RVER"\n` +
      `grace_minutes = 0\ncold_cache_dir = "${join(c.dir, 'cold-cache')}"\nschedule = "0 3 1 1 *"\n` +
      `[tiering.tables."public.orders"]\ntime_column = "order_date"\n` +
      `[api]\nlisten = "127.0.0.1:${c.port}"\nquery_timeout_ms = 120000\n[log]\nlevel = "info"\n`,
  );
  return path;
}

/** The soak's view of ducktail's HTTP API. */
export function soakApi(base: string) {
  return {
    /** Rows of a query, streamed as NDJSON (no row cap). */
    async query(sql: string): Promise<unknown[][]> {
      const res = await fetch(`${base}/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
        body: JSON.stringify({ sql }),
      });
      if (!res.ok) throw new Error(`query failed: ${res.status} ${await res.text()}`);
      const lines = (await res.text()).split('\n').filter((l) => l !== '');
      return lines.slice(1).map((l) => JSON.parse(l) as unknown[]);
    },
    /** The API answers queries (readyz may say 503 while a fault lasts, e.g. after a failed tier pass). */
    async answering(): Promise<boolean> {
      try {
        return (await fetch(`${base}/healthz`)).ok;
      } catch {
        return false;
      }
    },
    /** POST /v1/admin/archive: one tiering pass, its report. */
    async archive(signal?: AbortSignal): Promise<{ moved: { to: string }[]; errors: string[] }> {
      const res = await fetch(`${base}/v1/admin/archive`, { method: 'POST', signal });
      if (!res.ok) throw new Error(`archive failed: ${res.status} ${await res.text()}`);
      return (await res.json()) as { moved: { to: string }[]; errors: string[] };
    },
  };
}
export type SoakApi = ReturnType<typeof soakApi>;
