// The dashboard in headless Chromium (Debian's package, driven by playwright-core) against `ducktail demo`
// with a token set: the page asks for it, the pipeline and charts draw live data, anomalies are marked,
// a console query returns rows, and nothing overflows at 1280 px or on a phone. Screenshots: test/artifacts/.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { freePort, postmaster } from '../../src/demo/postgres.ts';
import { connectSql } from '../../src/source/index.ts';
import { spawnDucktail, waitReady } from '../support/ducktail-process.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dir, '../artifacts');
const TOKEN = 'dashboard-token-0123456789';
let dir: string;
let base: string;
let demo: Bun.Subprocess | null = null;
let browser: Browser | null = null;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/ci-install.sh installs Debian's chromium`);
  dir = mkdtempSync(join(tmpdir(), 'ducktail-dashboard-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  writeFileSync(join(dir, 'ducktail.toml'), `[api]\ntokens = [{ token = "${TOKEN}", scope = "read" }]\n`);
  demo = spawnDucktail(['demo', '--config', join(dir, 'ducktail.toml')], {
    cwd: dir,
    env: { DUCKTAIL_DEMO_DATA_DIR: join(dir, 'data'), DUCKTAIL_DEMO_PORT: String(port), DUCKTAIL_DEMO_RATE: '40', DUCKTAIL_LOG_LEVEL: 'warn' },
  });
  await waitReady(demo, { ready: async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200 });
  // An hour of history and a spike in the current minute, so the anomaly detector has something to mark.
  const pm = postmaster(join(dir, 'data/postgres'))!;
  const sql = connectSql(`postgres://postgres:ducktail@127.0.0.1:${pm.port}/postgres`, { max: 1 });
  await sql.unsafe(`INSERT INTO orders (customer_id, product_id, price, quantity, status, order_date)
    SELECT 1 + g % 200, 1, 10 + g % 3, 1, 'paid', date_trunc('minute', now()) - (1 + g % 45) * interval '1 minute'
      FROM generate_series(1, 450) g;
    INSERT INTO orders (customer_id, product_id, price, quantity, status, order_date)
    SELECT 1 + g % 200, 1, 900, 5, 'paid', now() FROM generate_series(1, 60) g`);
  await sql.end();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    demo.kill('SIGINT');
    await Promise.race([demo.exited, Bun.sleep(20_000)]);
    if (demo.exitCode === null) demo.kill(9);
  }
  const pm = dir ? postmaster(join(dir, 'data/postgres')) : null;
  if (pm) process.kill(pm.pid, 'SIGQUIT');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Elements wider than their box, and whether the page scrolls sideways. */
async function overflow(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const bad: string[] = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth) bad.push(`page ${doc.scrollWidth} > ${window.innerWidth}`);
    for (const e of document.querySelectorAll<HTMLElement>('header, .card, .node, .edge, .big, .chart svg')) {
      const box = e.getBoundingClientRect();
      if (box.right > window.innerWidth + 1) bad.push(`${e.className || e.tagName} right ${box.right}`);
      if (!e.classList.contains('scroll') && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'auto') {
        bad.push(`${e.id || e.className || e.tagName} content ${e.scrollWidth} > ${e.clientWidth}`);
      }
    }
    return bad;
  });
}

describe('dashboard in headless Chromium', () => {
  test('asks for the token, draws the live pipeline and charts, runs a console query, fits 1280 px', async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const failed: string[] = [];
    page.on('pageerror', (e) => failed.push(e.message));
    await page.goto(`${base}/`);
    await page.locator('#token-form').waitFor({ state: 'visible', timeout: 15_000 });
    await page.fill('#token', TOKEN);
    await page.click('#token-form button');
    await page.locator('#token-form').waitFor({ state: 'hidden' });

    await page.waitForSelector('#revenue-chart path.chart-line', { timeout: 30_000 });
    await page.waitForSelector('#status-chart rect.chart-bar', { timeout: 30_000 });
    await page.waitForSelector('#revenue-chart circle.chart-mark', { timeout: 30_000 });
    expect(Number(await page.getAttribute('#revenue-chart', 'data-points'))).toBeGreaterThanOrEqual(60);
    expect(await page.locator('#pipeline .node').count()).toBeGreaterThanOrEqual(3);
    await page.waitForFunction(() => /\d+ changes\/s/.test(document.querySelector('#pipeline')?.textContent ?? ''), null, { timeout: 15_000 });
    expect(await page.textContent('#pipeline')).toContain('PostgreSQL');
    expect(await page.textContent('#pipeline')).toContain('DuckDB');
    expect(await page.textContent('#health')).toMatch(/ok|degraded/);

    // The charts move: the orders counted per status grow with the workload.
    const total = async () => Number(await page.getAttribute('#status-chart', 'data-total'));
    const before = await total();
    await page.waitForFunction((b) => Number(document.querySelector('#status-chart')?.getAttribute('data-total')) > b, before, { timeout: 20_000 });

    await page.fill('#sql', "select order_id, status, price from orders where status <> 'cancelled' order by order_id limit 7");
    await page.click('#run');
    await page.waitForSelector('#console-result table.grid', { timeout: 15_000 });
    expect(await page.locator('#console-result table.grid tr').count()).toBe(8);
    expect(await page.textContent('#console-result')).toContain('7 rows');

    expect(await overflow(page)).toEqual([]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-1280.png'), fullPage: true });
    expect(failed).toEqual([]);
    await page.close();
  }, 120_000);

  test("the running appliance's /metrics parses as Prometheus text (promtool) and shows replication lag", async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^ducktail_replication_lag_seconds \d+(\.\d+)?$/m);
    expect(text).toMatch(/^ducktail_replication_lag_bytes \d+$/m);
    expect(text).toMatch(/^ducktail_changes_applied_total [1-9]\d*$/m);
    expect(text).toMatch(/^ducktail_commit_to_queryable_seconds_count [1-9]\d*$/m);
    const check = Bun.spawnSync(['promtool', 'check', 'metrics'], { stdin: new TextEncoder().encode(text) });
    expect(check.exitCode, check.stderr.toString()).toBe(0);
  });

  test('the token is kept for the session; nothing overflows on a phone', async () => {
    const context = await browser!.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.evaluate((t) => sessionStorage.setItem('ducktail.token', t), TOKEN);
    await page.reload();
    await page.waitForSelector('#status-chart rect.chart-bar', { timeout: 30_000 });
    await page.waitForSelector('#revenue-chart path.chart-line', { timeout: 30_000 });
    expect(await page.isVisible('#token-form')).toBe(false);
    expect(await overflow(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });
    await context.close();
  }, 120_000);
});
