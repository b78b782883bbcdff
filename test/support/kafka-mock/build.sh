#!/usr/bin/env bash
# Builds the Kafka test service: librdkafka 2.15.1's mock cluster behind mock.c.
#
# Idempotent and cached in <repo>/.cache/kafka-mock (git-ignored):
#   confluentinc-kafka-javascript-<v>.tgz   npm tarball, carries deps/librdkafka
#   lib/librdkafka.so.1                     built once (about a minute)
#   bin/kafka-mock                          rebuilt when mock.c or this script changes
# Prints the binary's path as the last line of stdout; progress goes to stderr.
#
# Needs: bash, npm (registry access on the first run), tar, gcc, make,
# python3 (librdkafka's linker-script generator), coreutils. librdkafka's
# configure also insists on a C++ compiler answering --version although the
# C library uses none: without g++ we point CXX at the C compiler.
# Debian packages for a bare machine (see scripts/ci-install.sh):
#   gcc make libc6-dev python3 (optional: g++ zlib1g-dev)
# Override the cache folder with KAFKA_MOCK_CACHE.
set -euo pipefail

KJS_VERSION=1.10.1        # @confluentinc/kafka-javascript bundling librdkafka 2.15.1
RDKAFKA_VERSION=0x020f01ff  # RD_KAFKA_VERSION of 2.15.1 in src/rdkafka.h

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cache="${KAFKA_MOCK_CACHE:-$repo/.cache/kafka-mock}"
tarball="$cache/confluentinc-kafka-javascript-$KJS_VERSION.tgz"
lib="$cache/lib/librdkafka.so.1"
bin="$cache/bin/kafka-mock"

log() { printf 'kafka-mock: %s\n' "$*" >&2; }

up_to_date() {
  [[ -x "$bin" && -f "$lib" && "$bin" -nt "$here/mock.c" && "$bin" -nt "$here/build.sh" ]]
}

if up_to_date; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache/bin" "$cache/lib"

# One build at a time per cache (parallel test runs, CI and a developer).
if command -v flock >/dev/null; then
  exec 9>"$cache/.lock"
  flock 9
  if up_to_date; then
    echo "$bin"
    exit 0
  fi
fi

cc="${CC:-gcc}"
command -v "$cc" >/dev/null || cc=cc
command -v "$cc" >/dev/null || { log "no C compiler (install gcc)"; exit 1; }
command -v make >/dev/null || { log "make is missing (install make)"; exit 1; }
command -v python3 >/dev/null || { log "python3 is missing (install python3)"; exit 1; }

if [[ ! -f "$lib" ]]; then
  start=$SECONDS
  if [[ ! -f "$tarball" ]]; then
    log "fetching @confluentinc/kafka-javascript@$KJS_VERSION (source of librdkafka)"
    (cd "$cache" && npm pack --silent "@confluentinc/kafka-javascript@$KJS_VERSION" >/dev/null)
    [[ -f "$tarball" ]] || { log "npm pack did not produce $tarball"; exit 1; }
  fi

  work="$cache/build.$$"
  rm -rf "$work"
  mkdir -p "$work"
  trap 'rm -rf "$work"' EXIT
  tar xzf "$tarball" -C "$work" package/deps/librdkafka
  src="$work/package/deps/librdkafka"
  grep -q "define RD_KAFKA_VERSION *$RDKAFKA_VERSION" "$src/src/rdkafka.h" || {
    log "tarball does not carry librdkafka $RDKAFKA_VERSION"; exit 1; }

  cxx="${CXX:-}"
  if [[ -z "$cxx" ]]; then
    if command -v g++ >/dev/null; then cxx=g++
    elif command -v c++ >/dev/null; then cxx=c++
    else cxx="$cc"  # configure only runs `$CXX --version`; src/ is plain C
    fi
  fi

  log "configuring librdkafka"
  (cd "$src" && CC="$cc" CXX="$cxx" ./configure --disable-ssl --disable-gssapi \
    --disable-sasl --disable-curl --disable-lz4-ext --disable-zstd >"$work/configure.log" 2>&1) || {
    tail -n 40 "$work/configure.log" >&2; log "configure failed"; exit 1; }

  log "building librdkafka.so.1 (about a minute)"
  make -C "$src/src" -j"$(nproc 2>/dev/null || echo 2)" librdkafka.so.1 >"$work/make.log" 2>&1 || {
    tail -n 40 "$work/make.log" >&2; log "make failed"; exit 1; }

  rm -rf "$cache/include"
  mkdir -p "$cache/include"
  cp "$src/src/rdkafka.h" "$src/src/rdkafka_mock.h" "$cache/include/"
  cp "$src/src/librdkafka.so.1" "$lib.tmp"
  mv -f "$lib.tmp" "$lib"
  log "librdkafka built in $((SECONDS - start))s"
fi

log "compiling mock.c"
"$cc" -O2 -Wall -Wextra -std=gnu11 -isystem "$cache/include" -o "$bin.tmp" "$here/mock.c" \
  "$lib" -Wl,-rpath,'$ORIGIN/../lib'
mv -f "$bin.tmp" "$bin"
echo "$bin"
