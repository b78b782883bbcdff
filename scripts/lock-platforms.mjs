// Adds the other platforms' @duckdb/node-bindings entries to package-lock.json.
// The registry this team builds against carries only the linux-x64 bindings, so `npm install`
// leaves the other optional platform packages out of the lock and `npm ci` then refuses it as
// "out of sync". Each entry is tagged with its os/cpu(/libc), so npm skips it on any other
// machine and fetches it from the public registry on its own. Run after bumping @duckdb/node-api:
//   node scripts/lock-platforms.mjs
import { readFileSync, writeFileSync } from "node:fs";

const lockPath = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, "utf8"));
const bindings = lock.packages["node_modules/@duckdb/node-bindings"];
if (!bindings) throw new Error("package-lock.json has no @duckdb/node-bindings; run npm install first");

const platforms = {
  "darwin-arm64": { os: "darwin", cpu: "arm64" },
  "darwin-x64": { os: "darwin", cpu: "x64" },
  "linux-arm64": { os: "linux", cpu: "arm64", libc: "glibc" },
  "linux-arm64-musl": { os: "linux", cpu: "arm64", libc: "musl" },
  "linux-x64": { os: "linux", cpu: "x64", libc: "glibc" },
  "linux-x64-musl": { os: "linux", cpu: "x64", libc: "musl" },
  "win32-arm64": { os: "win32", cpu: "arm64" },
  "win32-x64": { os: "win32", cpu: "x64" },
};
let added = 0;
for (const [name, version] of Object.entries(bindings.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue; // resolved by npm itself: keep its resolved/integrity
  const platform = platforms[name.replace("@duckdb/node-bindings-", "")];
  if (!platform) throw new Error(`unknown DuckDB binding ${name}: add its os/cpu to scripts/lock-platforms.mjs`);
  const entry = { version, cpu: [platform.cpu], license: "MIT", optional: true, os: [platform.os] };
  if (platform.libc) entry.libc = [platform.libc];
  lock.packages[key] = entry;
  added++;
}
const sorted = Object.keys(lock.packages).sort((a, b) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0));
lock.packages = Object.fromEntries(sorted.map((k) => [k, lock.packages[k]]));
writeFileSync(lockPath, JSON.stringify(lock, null, 2) + "\n");
console.log(`package-lock.json: ${added} platform binding entr${added === 1 ? "y" : "ies"} added`);
