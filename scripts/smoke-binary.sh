#!/usr/bin/env bash
# Smoke test of the compiled binary (see scripts/smoke-binary.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x dist/ducktail ] || { echo "dist/ducktail is missing: run npm run build first"; exit 1; }
exec node_modules/.bin/bun scripts/smoke-binary.ts
