#!/usr/bin/env bash
# Installs what gimel needs to build and test on Debian 12 (idempotent: installs only what is
# missing). Needs root or sudo for apt-get. Nothing is downloaded except Debian packages (and,
# for the browser tests, npm packages pinned by their package-lock.json files).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libboost-dev librocksdb-dev libhiredis-dev nlohmann-json3-dev libcli11-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  redis-server redis-tools curl clang-format
)
if [[ "${GIMEL_SETUP_BROWSER:-1}" == 1 ]]; then
  PACKAGES+=(chromium)
  command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
  command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages for the browser tests (each folder pins its versions in package-lock.json).
if [[ "${GIMEL_SETUP_BROWSER:-1}" == 1 ]]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  for dir in "$root"/tests/browser/*/; do
    [[ -f "$dir/package-lock.json" ]] || continue
    if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules" ]]; then
      echo "setup: npm ci in ${dir#$root/}"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      touch "$dir/node_modules"
    fi
  done
fi
