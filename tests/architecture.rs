//! The architecture's invariants, checked on every build without NATS: what the pure crates
//! may depend on, where JetStream may be used, that crate roots map their modules, and that
//! every rule of `docs/rules.md` names where it is decided and the tests that prove it.
//! ARCHITECTURE.md states each as an "Architecture invariant:" line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use certflow_domain::Rule;
use certflow_proto::refusal::ClientReason;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("ARCHITECTURE.md").is_file())
        .expect("the repository root holds ARCHITECTURE.md")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The workspace's packages: name → (manifest dir, normal dependencies).
fn packages() -> BTreeMap<String, (PathBuf, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let mut packages = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_string();
        let manifest = PathBuf::from(package["manifest_path"].as_str().expect("manifest"));
        let dependencies = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_string))
            .collect();
        let dir = manifest.parent().expect("manifest dir").to_path_buf();
        packages.insert(name, (dir, dependencies));
    }
    packages
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Architecture invariant: the domain is pure (no IO, no clock, no async), the CA knows
/// X.509 and keys, nothing of NATS or gRPC, and the ACME rules are JSON and signatures, no
/// IO. A new dependency of any is a design decision, made here on purpose.
#[test]
fn the_domain_and_the_ca_depend_only_on_what_they_are_allowed() {
    let packages = packages();
    let allowed = [
        ("certflow-domain", set(&["psl", "serde", "thiserror"])),
        (
            "certflow-ca",
            set(&[
                "certflow-domain",
                "rcgen",
                "rsa",
                "sm2",
                "x509-cert",
                "der",
                "spki",
                "const-oid",
                "serde",
                "sha2",
                "hex",
                "p12-keystore",
                "aes-gcm",
                "hpke",
                "rand_core",
                "thiserror",
                "time",
                "x509-parser",
            ]),
        ),
        (
            "certflow-acme",
            set(&["base64", "jsonwebtoken", "serde", "serde_json", "sha2"]),
        ),
    ];
    for (crate_name, allowed) in allowed {
        let (_, dependencies) = &packages[crate_name];
        let extra: Vec<_> = dependencies.difference(&allowed).collect();
        assert!(
            extra.is_empty(),
            "{crate_name} depends on {extra:?}, outside its allow-list in {}",
            file!()
        );
    }
}

/// Architecture invariant: services talk only through NATS, so no service crate depends on
/// another; the transport (`certflow-bus`) depends on no store.
#[test]
fn services_depend_on_no_other_service_and_the_bus_on_no_store() {
    let packages = packages();
    let services = [
        "certflow-gateway",
        "certflow-issuance",
        "certflow-revocation",
        "certflow-reissue",
        "certflow-validation",
        "certflow-review",
        "certflow-notify",
        "certflow-projection",
    ];
    for service in services {
        let (_, dependencies) = &packages[service];
        for other in services {
            assert!(
                !dependencies.contains(other),
                "{service} depends on {other}: services talk only over NATS"
            );
        }
    }
    let (_, bus) = &packages["certflow-bus"];
    assert!(
        !bus.contains("certflow-store") && !bus.contains("certflow-runtime"),
        "certflow-bus is the transport and depends on no store: {bus:?}"
    );
}

/// Architecture invariant: JetStream is used through `certflow-store` alone (the benchmark
/// and the test kit, which measure and set up the server, excepted), so every stream, its
/// settings and its permissions are in one place.
#[test]
fn jetstream_is_used_only_in_the_store() {
    let exempt = ["certflow-store", "certflow-bench", "certflow-testkit"];
    let mut offenders = Vec::new();
    for (name, (dir, _)) in packages() {
        if exempt.contains(&name.as_str()) {
            continue;
        }
        for file in rust_files(&dir.join("src")) {
            let text = std::fs::read_to_string(&file).expect("readable");
            if text.contains("async_nats::jetstream") || text.contains("jetstream::") {
                offenders.push(file);
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "JetStream outside certflow-store: {offenders:?}"
    );
}

/// Architecture invariant: the console is a client of the gateway and nothing else: its
/// code names no NATS client, bus, store or service crate, only the gateway's token check.
#[test]
fn the_console_talks_only_to_the_gateway() {
    let packages = packages();
    let (dir, _) = packages.get("certflow-console").expect("the console crate");
    let forbidden = [
        "async_nats",
        "certflow_bus",
        "certflow_store",
        "certflow_issuance",
        "certflow_revocation",
        "certflow_reissue",
        "certflow_validation",
        "certflow_review",
        "certflow_projection",
        "certflow_ca",
    ];
    let mut offenders = Vec::new();
    for file in rust_files(&dir.join("src")) {
        let text = std::fs::read_to_string(&file).expect("readable");
        for name in forbidden {
            if text.contains(name) {
                offenders.push(format!("{}: {name}", file.display()));
            }
        }
        for line in text.lines().filter(|l| l.contains("certflow_gateway::")) {
            if !line.contains("certflow_gateway::auth") {
                offenders.push(format!("{}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the console reaches past the gateway: {offenders:#?}"
    );
}

/// Architecture invariant: every crate root opens with a doc that names each module it
/// declares, so a reader finds their way from `lib.rs` (or `main.rs`).
#[test]
fn every_crate_root_maps_its_modules() {
    let mut missing = Vec::new();
    for (name, (dir, _)) in packages() {
        for root in ["src/lib.rs", "src/main.rs"] {
            let path = dir.join(root);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let doc: String = text
                .lines()
                .filter(|l| l.starts_with("//!"))
                .collect::<Vec<_>>()
                .join("\n");
            if doc.is_empty() {
                missing.push(format!("{name}/{root}: no crate doc"));
            }
            for line in text.lines() {
                let line = line.trim_start();
                let declared = line
                    .strip_prefix("pub mod ")
                    .or_else(|| line.strip_prefix("pub(crate) mod "))
                    .or_else(|| line.strip_prefix("mod "))
                    .and_then(|rest| rest.strip_suffix(';'));
                if let Some(module) = declared
                    && !doc.contains(&format!("`{module}`"))
                {
                    missing.push(format!("{name}/{root}: module `{module}`"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "crate roots whose doc does not name these: {missing:#?}"
    );
}

/// One row of `docs/rules.md`'s table.
#[derive(Debug)]
struct RuleRow {
    id: String,
    reasons: Vec<String>,
    decided_in: Vec<String>,
    proved_by: Vec<String>,
}

fn rule_rows() -> Vec<RuleRow> {
    let text = std::fs::read_to_string(repo().join("docs/rules.md")).expect("docs/rules.md");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    text.lines()
        .filter(|line| {
            line.starts_with("| ") && !line.starts_with("| id ") && !line.contains("---")
        })
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 7, "a rule row has five cells: {line}");
            RuleRow {
                id: cells[1].to_string(),
                reasons: ticked(cells[3]),
                decided_in: ticked(cells[4]),
                proved_by: ticked(cells[5]),
            }
        })
        .collect()
}

/// Every test function's name in the repository.
fn test_names() -> BTreeSet<String> {
    let root = repo();
    let mut names = BTreeSet::new();
    let mut files = rust_files(&root.join("crates"));
    files.extend(rust_files(&root.join("tests")));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let mut test_attribute = false;
        for line in text.lines() {
            let line = line.trim_start();
            if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                test_attribute = true;
            } else if test_attribute && let Some(rest) = line.split("fn ").nth(1) {
                if let Some(name) = rest.split(['(', '<']).next() {
                    names.insert(name.trim().to_string());
                }
                test_attribute = false;
            }
        }
    }
    names
}

/// Architecture invariant: every rule of `docs/rules.md` is a `Rule` in the code, names the
/// file where it is decided (which cites it), and the tests that prove it (which exist);
/// every reason it names is in the error catalogue.
#[test]
fn every_rule_is_decided_somewhere_and_proved_by_tests() {
    let rows = rule_rows();
    let root = repo();
    let tests = test_names();
    let documented: BTreeSet<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    for rule in Rule::ALL {
        assert!(
            documented.contains(rule.as_str()),
            "{rule} has no row in docs/rules.md"
        );
    }
    for row in &rows {
        let rule = Rule::ALL
            .into_iter()
            .find(|rule| rule.as_str() == row.id)
            .unwrap_or_else(|| panic!("docs/rules.md names {}, which is no Rule", row.id));
        let variant = format!("Rule::{rule:?}");
        assert!(!row.decided_in.is_empty(), "{}: no decision site", row.id);
        for site in &row.decided_in {
            let text = std::fs::read_to_string(root.join(site))
                .unwrap_or_else(|_| panic!("{}: decision site {site} does not exist", row.id));
            assert!(
                text.contains(&variant) || text.contains(&row.id),
                "{}: {site} neither cites {} nor uses {variant}",
                row.id,
                row.id
            );
        }
        assert!(!row.proved_by.is_empty(), "{}: no test", row.id);
        for test in &row.proved_by {
            assert!(
                tests.contains(test),
                "{}: the test {test} does not exist",
                row.id
            );
        }
        for reason in &row.reasons {
            assert!(
                ClientReason::parse(reason).is_some(),
                "{}: {reason} is not in the error catalogue",
                row.id
            );
        }
    }
}
