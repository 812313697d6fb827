#!/usr/bin/env bash
# Runs the whole certflow set on this machine: `certd all`, and a nats-server of its own
# (JetStream, data under .run/) unless NATS_URL names one. Ctrl-C stops everything.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
run_dir="$root/.run"
listen="${CERTD_LISTEN:-127.0.0.1:50051}"
console="${CERTD_CONSOLE_LISTEN:-127.0.0.1:8081}"
nats_port="${CERTFLOW_NATS_PORT:-14222}"
mkdir -p "$run_dir"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

nats_pid=""
certd_pid=""
cleanup() {
  trap - INT TERM EXIT
  if [ -n "$certd_pid" ]; then kill -TERM "$certd_pid" 2>/dev/null || true; wait "$certd_pid" 2>/dev/null || true; fi
  if [ -n "$nats_pid" ]; then kill -TERM "$nats_pid" 2>/dev/null || true; wait "$nats_pid" 2>/dev/null || true; fi
  echo "certflow stopped."
}
trap cleanup INT TERM EXIT

if [ -z "${NATS_URL:-}" ]; then
  # 2.12 or newer: NATS_SERVER_BIN, PATH, or the pinned release installed under the build
  # directory. A NATS service already on this machine is never used or touched.
  nats_server=$("$root/deploy/nats/server.sh") || {
    echo "or set NATS_URL to a running nats-server 2.12 or newer with JetStream." >&2
    exit 1
  }
  if port_open "$nats_port"; then
    echo "port $nats_port is taken; set CERTFLOW_NATS_PORT to a free port, or NATS_URL to use that server." >&2
    exit 1
  fi
  # One NATS user per service (deploy/nats/certflow.conf), passwords kept in .run/.
  passwords="$run_dir/nats-passwords.env"
  umask 077
  touch "$passwords"
  for user in GATEWAY ISSUANCE REVOCATION REISSUE VALIDATION REVIEW NOTIFIER REVIEWER PROJECTION OPERATOR; do
    grep -q "^CERTFLOW_NATS_${user}_PASSWORD=" "$passwords" ||
      echo "CERTFLOW_NATS_${user}_PASSWORD=p$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >> "$passwords"
  done
  set -a; . "$passwords"; set +a
  "$nats_server" -c "$root/deploy/nats/certflow.conf" -js -a 127.0.0.1 -p "$nats_port" \
    -sd "$run_dir/nats" -l "$run_dir/nats.log" &
  nats_pid=$!
  for _ in $(seq 1 100); do port_open "$nats_port" && break; sleep 0.1; done
  port_open "$nats_port" || { echo "nats-server did not start; see $run_dir/nats.log" >&2; exit 1; }
  export NATS_URL="nats://127.0.0.1:$nats_port"
  echo "NATS:     $NATS_URL (JetStream, a user per service; data, log and passwords in .run/)"
else
  echo "NATS:     $NATS_URL"
fi

# The binaries `make run` built, wherever cargo puts them.
bin_dir="${CARGO_TARGET_DIR:-target}/debug"
case "$bin_dir" in /*) ;; *) bin_dir="$root/$bin_dir" ;; esac
certd="$bin_dir/certd"
shown_bin_dir="${bin_dir#"$root"/}"
# Streams and consumers first, as the NATS operator: the services only attach to them.
"$certd" provision >/dev/null

# A development identity: a signing key of our own and ready tokens (valid 24 hours).
"$certd" dev-keys --dir "$run_dir" >/dev/null
mkdir -p "$run_dir/tokens"
make_token() { # name account role
  "$certd" dev-token --key "$run_dir/token-signing.key.pem" --account "$2" --role "$3" \
    --subject "$1" > "$run_dir/tokens/$1"
}
make_token alice acme customer
make_token bob globex customer
make_token rita reviewers reviewer
make_token ops platform admin

cat <<MSG
Gateway:  $listen (gRPC, plaintext for local development, reflection on)
Console:  http://$console/ (sign in as alice, bob, rita or ops)
CRLs:     http://127.0.0.1:8080/crl/<issuer>.json lists each CA's CRL shards
ACME:     http://127.0.0.1:4001/acme/directory (revokeCert; certctl acme-eab makes an EAB key)
Tokens (24 h) in .run/tokens/: alice (customer, account acme), bob (customer, account globex),
  rita (reviewer), ops (admin). Sign more with:
  $shown_bin_dir/certd dev-token --account acme --role customer
Try it in another terminal:
  export CERTFLOW_ADDR=$listen CERTFLOW_TOKEN=\$(cat .run/tokens/alice)
  $shown_bin_dir/certctl issue --brand geotrust --level dv --domain www.example.com --dns-auto www.example.com
  $shown_bin_dir/certctl list
  $shown_bin_dir/certctl revoke <id> --reason key-compromise
  grpcurl -plaintext $listen list
  grpcurl -plaintext -H "authorization: Bearer \$(cat .run/tokens/ops)" -d '{"status":"CERTIFICATE_STATUS_ISSUED"}' \\
    $listen certflow.v1.CertificateService/ListCertificates
Ctrl-C stops everything.
MSG

CERTD_KEK="$(cat "$run_dir/kek.hex")" CERTD_LISTEN="$listen" "$certd" all --data-dir "$run_dir/data" --plaintext \
  --jwt-ed25519-key "$run_dir/token-signing.pub.pem" \
  --console-listen "$console" --console-dev-identities "$run_dir/tokens" &
certd_pid=$!
wait "$certd_pid" || true
certd_pid=""
