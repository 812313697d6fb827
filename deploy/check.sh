#!/usr/bin/env bash
# Checks the files of deploy/ without a cluster: the Kubernetes manifests against the API
# schema (kubernetes-validate, strict), the compose file's references, the systemd units
# (systemd-analyze verify), and that every certd setting they name (CERTD_*) is one certd
# knows. `make deploy-lint` runs it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}

# kubernetes-validate from PyPI, in a virtualenv of its own under target/.
venv="$target/deploy-venv"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
manifests=()
for file in deploy/k8s/*.yaml; do
  case "$(basename "$file")" in
    kustomization.yaml | nats-values.yaml) ;; # not Kubernetes objects
    *) manifests+=("$file") ;;
  esac
done
"$venv/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"
echo "deploy/k8s: ${#manifests[@]} manifests valid (kubernetes-validate --strict)"

# The compose file parses, and what it mounts and builds from is in the repository
# (secrets/ is made by make-secrets.sh).
"$venv/bin/python" - <<'PY'
import os, sys, yaml
base = "deploy/docker"
compose = yaml.safe_load(open(os.path.join(base, "docker-compose.yml")))
missing = []
for name, service in compose["services"].items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith(".") and not source.startswith("./secrets"):
            if not os.path.exists(os.path.join(base, source)):
                missing.append(f"{name}: {source}")
    build = service.get("build")
    if build:
        context = os.path.join(base, build["context"])
        if not os.path.exists(os.path.join(context, build["dockerfile"])):
            missing.append(f"{name}: {build['dockerfile']}")
if missing:
    sys.exit("deploy/docker/docker-compose.yml refers to missing files: " + ", ".join(missing))
print(f"deploy/docker: docker-compose.yml parses; {len(compose['services'])} services, their files present")
PY

# The units, in a scratch root that has the binaries they start.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/usr/local/bin" "$scratch/usr/sbin" "$scratch/bin" "$scratch/lib/systemd" \
  "$scratch/etc/systemd/system"
printf '#!/bin/sh\n' > "$scratch/usr/local/bin/certd"
printf '#!/bin/sh\n' > "$scratch/usr/sbin/nats-server"
cp /bin/kill "$scratch/bin/kill"
chmod +x "$scratch/usr/local/bin/certd" "$scratch/usr/sbin/nats-server"
cp -r /lib/systemd/system "$scratch/lib/systemd/"
cp deploy/systemd/*.service deploy/systemd/*.target "$scratch/etc/systemd/system/"
units=(certd@gateway.service certd@projection.service certflow-nats.service certflow.target)
report=$(cd "$scratch/etc/systemd/system" && systemd-analyze verify --man=no --root="$scratch" "${units[@]}" 2>&1) || true
if [ -n "$report" ]; then
  echo "$report" >&2
  echo "deploy/systemd: systemd-analyze verify found problems" >&2
  exit 1
fi
echo "deploy/systemd: ${#units[@]} units verified (systemd-analyze verify)"

# Every CERTD_* setting named in deploy/ is a flag's variable of certd.
certd="$target/debug/certd"
[ -x "$certd" ] || cargo build --quiet --bin certd
known=$("$certd" --help | grep -o 'env: CERTD_[A-Z_]*' | sed 's/env: //' | sort -u)
named=$(grep -rhoE 'CERTD_[A-Z_]+' deploy/k8s deploy/systemd deploy/docker | sort -u)
unknown=$(comm -23 <(echo "$named") <(echo "$known"))
if [ -n "$unknown" ]; then
  echo "deploy/ names settings certd does not have: $unknown" >&2
  exit 1
fi
echo "deploy/: $(echo "$named" | wc -l) certd settings named, all known to certd"
