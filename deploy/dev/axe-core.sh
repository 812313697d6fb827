#!/usr/bin/env bash
# Prints the path of axe-core's axe.min.js for the console's accessibility tests, installing
# the pinned release once with npm under the build directory. `make test` runs it before the
# tests, so the tests themselves never reach the network.
set -euo pipefail

VERSION=4.10.2
root=$(cd "$(dirname "$0")/../.." && pwd)
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
prefix="$target/axe-core/$VERSION"
script="$prefix/node_modules/axe-core/axe.min.js"
if [ ! -f "$script" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "installing axe-core $VERSION needs npm (Debian: apt-get install npm)" >&2
    exit 1
  fi
  echo "installing axe-core $VERSION into $prefix" >&2
  npm install --no-save --no-audit --no-fund --silent --prefix "$prefix" "axe-core@$VERSION" >&2
fi
echo "$script"
