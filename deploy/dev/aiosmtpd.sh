#!/usr/bin/env bash
# Prints the path of a Python interpreter that has aiosmtpd, the SMTP server the notifier's
# tests send email to, installing the pinned release once into a virtual environment under
# the build directory. `make test` runs it before the tests, so the tests themselves never
# reach the network.
set -euo pipefail

VERSION=1.4.6
root=$(cd "$(dirname "$0")/../.." && pwd)
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
venv="$target/aiosmtpd/$VERSION"
python="$venv/bin/python"
if ! "$python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "installing aiosmtpd $VERSION into $venv" >&2
  python3 -m venv "$venv" >&2
  "$python" -m pip install --quiet --disable-pip-version-check "aiosmtpd==$VERSION" >&2
fi
echo "$python"
