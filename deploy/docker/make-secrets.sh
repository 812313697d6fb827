#!/usr/bin/env bash
# Makes what docker-compose.yml needs under secrets/ (once; kept if present): a CA and
# certificates for the NATS nodes and the gateway, the NATS users' passwords, the key
# store's KEK and a token-signing key pair (Ed25519). Needs openssl.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p secrets/tls
umask 077
tls=secrets/tls
if [ ! -f "$tls/ca.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=certflow compose CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
fi
leaf() { # name, subjectAltName
  [ -f "$tls/$1.crt" ] && return
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$tls/$1.key" -out "$tls/$1.csr" 2>/dev/null
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 825 -out "$tls/$1.crt" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2") 2>/dev/null
  rm -f "$tls/$1.csr"
}
leaf server "DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:localhost"
leaf gateway "DNS:localhost,DNS:gateway,IP:127.0.0.1"
if [ ! -f secrets/token-signing.key.pem ]; then
  openssl genpkey -algorithm ed25519 -out secrets/token-signing.key.pem
  openssl pkey -in secrets/token-signing.key.pem -pubout -out secrets/token-signing.pub.pem
fi
# The NATS servers know every user's password; each certd container gets only its own
# (secrets/<service>.env), the issuance service alone the KEK, the provisioning job alone
# the operator's.
if [ ! -f secrets/nats.env ]; then
  for user in gateway issuance revocation reissue validation review notifier reviewer projection operator; do
    # nats-server reads the value as configuration: letters and digits, a letter first.
    variable="CERTFLOW_NATS_$(echo "$user" | tr a-z A-Z)_PASSWORD"
    line="$variable=p$(openssl rand -hex 16)"
    echo "$line" >> secrets/nats.env
    echo "$line" > "secrets/$user.env"
  done
  echo "CERTD_KEK=$(openssl rand -hex 32)" >> secrets/issuance.env
fi
# The containers run as other users than this one: they read, nobody else writes.
chmod -R a+rX secrets
echo "secrets/ is ready: TLS under secrets/tls, each user's password in secrets/<user>.env"
