#!/usr/bin/env bash
# Checks the files of deploy/ without a cluster: the Kubernetes manifests against the API
# schema (kubernetes-validate, strict), the compose file's references, the alerting rules'
# runbook, tests and the Grafana dashboard (promtool itself runs in `make alerts-check`),
# the systemd units (systemd-analyze verify), and that every certd setting they name
# (CERTD_*) is one certd knows. `make deploy-lint` runs it.
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

# The alerting rules: each alert has a severity, a runbook section in docs/alerts.md that its
# link finds, and in alerts.test.yml a case that fires it and one where it stays quiet. The
# dashboard is JSON whose every query names its data source.
"$venv/bin/python" - <<'PY'
import json, re, sys, yaml
problems = []
rules = yaml.safe_load(open("deploy/prometheus/alerts.yml"))
alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
headings = set(re.findall(r"^## (\S+)$", open("docs/alerts.md").read(), re.M))
tests = yaml.safe_load(open("deploy/prometheus/alerts.test.yml"))["tests"]
fires, quiet = set(), set()
for test in tests:
    for case in test.get("alert_rule_test", []):
        (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
for rule in alerts:
    name = rule["alert"]
    if rule.get("labels", {}).get("severity") not in ("page", "ticket"):
        problems.append(f"{name}: severity is neither page nor ticket")
    annotations = rule.get("annotations", {})
    for key in ("summary", "description"):
        if not annotations.get(key):
            problems.append(f"{name}: no {key}")
    if annotations.get("runbook") != f"docs/alerts.md#{name.lower()}":
        problems.append(f"{name}: runbook is not docs/alerts.md#{name.lower()}")
    if name not in headings:
        problems.append(f"{name}: no section '## {name}' in docs/alerts.md")
    if name not in fires:
        problems.append(f"{name}: no test in alerts.test.yml where it fires")
    if name not in quiet:
        problems.append(f"{name}: no test in alerts.test.yml where it stays quiet")
dashboard = json.load(open("deploy/grafana/certflow.json"))
queries = 0
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        queries += 1
        if target.get("datasource", {}).get("uid") != "${datasource}" or not target.get("expr"):
            problems.append(f"dashboard panel {panel['title']!r}: a query without expr or data source")
if problems:
    sys.exit("deploy/prometheus, deploy/grafana:\n  " + "\n  ".join(problems))
print(f"deploy/prometheus: {len(alerts)} alerts, each with its runbook section and tests; "
      f"deploy/grafana: {len(dashboard['panels'])} panels, {queries} queries")
PY

# Secrets per process: each certd process is handed its own NATS password and nothing
# else's; the KEK reaches only the issuance service; the operator's password only the
# provisioning step.
"$venv/bin/python" - <<'PY'
import glob, os, re, sys, yaml
problems = []
def check(where, service, names):
    passwords = {n for n in names if re.fullmatch(r"CERTFLOW_NATS_[A-Z]+_PASSWORD", n)}
    own = {f"CERTFLOW_NATS_{service.upper()}_PASSWORD"}
    if passwords - own:
        problems.append(f"{where}: {service} gets {sorted(passwords - own)}")
    if "CERTD_KEK" in names and service != "issuance":
        problems.append(f"{where}: {service} gets the KEK")
def names_in(text):
    return set(re.findall(r"^\s*([A-Z_]+)=", text, re.M))
# systemd: the shared file holds no secret; each service's file only its own.
check("deploy/systemd/certd.env.example", "none", names_in(open("deploy/systemd/certd.env.example").read()))
for path in glob.glob("deploy/systemd/env/*.env.example"):
    service = os.path.basename(path).split(".")[0]
    check(path, service, names_in(open(path).read()))
# Kubernetes: the secrets each workload's containers reference.
for path in glob.glob("deploy/k8s/*.yaml"):
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") not in ("Deployment", "StatefulSet", "Job"):
            continue
        name = doc["metadata"]["name"]
        service = "operator" if name == "certflow-provision" else name.removeprefix("certd-")
        keys = set()
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    keys.add(ref["key"])
        check(f"{path} {name}", service, keys)
# Compose: each certd container's env file is its own (the console has none), and it
# mounts no private key but the gateway's own.
compose = yaml.safe_load(open("deploy/docker/docker-compose.yml"))
for name, service in compose["services"].items():
    if service.get("image") != "certflow:latest":
        continue
    role = "operator" if name == "provision" else name.split("-")[0]
    env_file = service.get("env_file")
    if role == "console":
        # The console holds no secret at all: no NATS password, no env file.
        if env_file is not None:
            problems.append(f"docker-compose {name}: the console gets {env_file}")
    elif env_file != f"secrets/{role}.env":
        problems.append(f"docker-compose {name}: env_file {env_file}, not secrets/{role}.env")
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source == "./secrets" or (source.endswith(".key") and role != "gateway"):
            problems.append(f"docker-compose {name}: mounts {source}")
if problems:
    sys.exit("secrets reach processes that do not need them:\n  " + "\n  ".join(problems))
print("deploy/: each process gets its own NATS password; the KEK only issuance")
PY

# The units, in a scratch root that has the binaries they start.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/usr/local/bin" "$scratch/usr/sbin" "$scratch/bin" "$scratch/lib/systemd" \
  "$scratch/etc/systemd/system"
printf '#!/bin/sh\n' > "$scratch/usr/local/bin/certd"
printf '#!/bin/sh\n' > "$scratch/usr/local/bin/nats-server"
cp /bin/kill "$scratch/bin/kill"
chmod +x "$scratch/usr/local/bin/certd" "$scratch/usr/local/bin/nats-server"
cp -r /lib/systemd/system "$scratch/lib/systemd/"
cp -r deploy/systemd/*.service deploy/systemd/*.service.d deploy/systemd/*.target \
  "$scratch/etc/systemd/system/"
units=(certd@gateway.service certd@issuance.service certd@projection.service
  certflow-provision.service certflow-nats.service certflow.target)
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
