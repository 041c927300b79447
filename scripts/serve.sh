#!/usr/bin/env bash
# The main job in one command: installs what is missing, builds, and runs `gimel serve` on the
# embedded store (data in ~/.gimel/data, config in ~/.gimel/config.json unless ./config.json
# exists). It prints the URL, the API key and the tracking snippet. Extra arguments go to
# `gimel serve` (e.g. --listen 0.0.0.0:8080).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
GIMEL_SETUP_BROWSER=0 "$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
exec "$root/build/src/cli/gimel" serve "$@"
