//! Keeps the load tool working: a few hundred real calls through a real gateway and a real
//! nats-server, and the reports they leave. Times are not checked: benchmarks never gate.

use std::path::Path;

use certflow_testkit::Certflow;

fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("JSON report")
}

/// certflow with its rate limits out of the way, as a load test runs it, and a customer
/// token of account `acme`.
async fn started_for_load() -> (Certflow, String) {
    let certflow = Certflow::start_with(|config| {
        config.gateway.commands_per_second = 1_000_000;
        config.gateway.queries_per_second = 1_000_000;
    })
    .await
    .expect("start");
    let token = certflow.token("bench", "acme", &["customer"]);
    (certflow, token)
}

async fn bench(args: &[&str]) {
    bench_in(Path::new("."), args).await;
}

/// Runs certflow-bench in `dir`, where relative paths in its files are read from.
async fn bench_in(dir: &Path, args: &[&str]) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_certflow-bench"))
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .expect("run certflow-bench");
    assert!(
        output.status.success(),
        "certflow-bench {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn revokes_through_the_gateway_and_publishes_raw_with_ghz_reports() {
    let (certflow, token) = started_for_load().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let revoke = dir.path().join("revoke.json");
    let addr = certflow.gateway_address().to_string();
    bench(&[
        "grpc",
        "--call",
        "revoke",
        "--addr",
        &addr,
        "--token",
        &token,
        "--account",
        "acme",
        "-n",
        "200",
        "-c",
        "16",
        "--quiet",
        "-O",
        &revoke.display().to_string(),
    ])
    .await;
    let revoked = report(&revoke);
    assert_eq!(revoked["count"], 200);
    assert_eq!(revoked["statusCodeDistribution"]["OK"], 200, "{revoked}");
    assert_eq!(revoked["options"]["concurrency"], 16);
    assert_eq!(
        revoked["latencyDistribution"].as_array().map(Vec::len),
        Some(7)
    );
    assert!(revoked["fastest"].as_u64().is_some_and(|ns| ns > 0));

    // Open loop, and a second run of the same calls: the certificates are revoked already.
    let ids = dir.path().join("ids.txt");
    bench(&[
        "setup",
        "--addr",
        &addr,
        "--token",
        &token,
        "--account",
        "acme",
        "-n",
        "50",
        "--out",
        &dir.path().display().to_string(),
    ])
    .await;
    let open = dir.path().join("open.json");
    let open_args = [
        "grpc",
        "--call",
        "revoke",
        "--addr",
        &addr,
        "--token",
        &token,
        "--ids",
        &ids.display().to_string(),
        "-n",
        "50",
        "--rps",
        "200",
        "--quiet",
        "-O",
        &open.display().to_string(),
    ];
    bench(&open_args).await;
    assert_eq!(report(&open)["statusCodeDistribution"]["OK"], 50);
    assert_eq!(report(&open)["options"]["rps"], 200);
    bench(&open_args).await;
    let again = report(&open);
    assert_eq!(
        again["statusCodeDistribution"]["FailedPrecondition"], 50,
        "revoking twice is refused (REV-17): {again}"
    );
    let data: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("revoke-data.json")).expect("ghz data"),
    )
    .expect("JSON");
    assert_eq!(data.as_array().map(Vec::len), Some(50));
    assert_eq!(data[0]["request_id"], "{{newUUID}}");

    let raw = dir.path().join("raw.json");
    bench(&[
        "publish",
        "--nats-url",
        &certflow.nats().url(),
        "-n",
        "300",
        "-c",
        "8",
        "--quiet",
        "-O",
        &raw.display().to_string(),
    ])
    .await;
    assert_eq!(report(&raw)["statusCodeDistribution"]["OK"], 300);
}

/// `tests/load/*.json` run as they are, the way ghz runs them, once `setup` has written the
/// files they name: every call answered OK, and the revocations really happened.
#[tokio::test]
async fn the_shipped_ghz_files_run_as_they_are_after_setup() {
    use certflow_proto::v1::{CertificateStatus, GetCertificateRequest};
    use std::os::unix::fs::PermissionsExt;

    let (certflow, token) = started_for_load().await;
    let addr = certflow.gateway_address().to_string();
    let work = tempfile::tempdir().expect("tempdir");
    bench_in(
        work.path(),
        &[
            "setup",
            "--addr",
            &addr,
            "--token",
            &token,
            "-n",
            "20",
            "--out",
            "target/load",
        ],
    )
    .await;
    let metadata = work.path().join("target/load/metadata.json");
    assert_eq!(
        std::fs::metadata(&metadata)
            .expect("metadata written")
            .permissions()
            .mode()
            & 0o777,
        0o600,
        "the token file is its owner's only"
    );

    let load = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/load");
    for (file, calls) in [("revoke", 20), ("get", 40), ("list", 30), ("reissue", 20)] {
        let config = load.join(format!("{file}.json")).display().to_string();
        let out = work.path().join(format!("{file}-report.json"));
        let total = calls.to_string();
        bench_in(
            work.path(),
            &[
                "run",
                &config,
                "--host",
                &addr,
                "-n",
                &total,
                "--quiet",
                "-O",
                &out.display().to_string(),
            ],
        )
        .await;
        let report = report(&out);
        assert_eq!(report["count"], calls, "{file}: {report}");
        assert_eq!(
            report["statusCodeDistribution"]["OK"], calls,
            "{file}: {report}"
        );
    }

    let mut certificates = certflow.certificates().await.expect("client");
    let revoked = std::fs::read_to_string(work.path().join("target/load/ids.txt")).expect("ids");
    for id in revoked.lines() {
        let status = certificates
            .get_certificate(GetCertificateRequest { id: id.into() })
            .await
            .expect("found")
            .into_inner()
            .certificate
            .expect("certificate")
            .status;
        assert_eq!(status, CertificateStatus::Revoked as i32, "{id}");
    }
}

/// `make bench`'s suite, at a tiny size: it runs end to end against its own nats-server and
/// `certd all`, prints every figure with its picture, and writes each picture and report.
#[tokio::test]
async fn the_suite_runs_small_and_draws_a_picture_per_figure() {
    let certd = Path::new(env!("CARGO_BIN_EXE_certflow-bench")).with_file_name("certd");
    assert!(
        certd.exists(),
        "{} is built by `cargo test --workspace` (make test); build it first",
        certd.display()
    );
    let out = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_certflow-bench"))
        .args([
            "suite",
            "--throughput-calls",
            "200",
            "--sequential-calls",
            "30",
            "--open-seconds",
            "1",
            "--large",
            "100",
            "--latency-calls",
            "10",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .current_dir(out.path())
        .output()
        .await
        .expect("run the suite");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for id in ["P1", "P2", "P3", "P4", "P5", "P6"] {
        let picture = out.path().join(format!("{id}.svg"));
        let row = stdout
            .lines()
            .find(|line| line.starts_with(id))
            .unwrap_or_else(|| panic!("no {id} in the table:\n{stdout}"));
        assert!(
            row.ends_with(&picture.display().to_string()),
            "the table names {id}'s picture: {row}"
        );
        let svg = std::fs::read_to_string(&picture).expect("picture written");
        assert!(svg.starts_with("<svg") && svg.contains(id), "{svg}");
    }
    for report in ["P1-revoke", "P2-revoke", "P3-revoke", "setup-issue"] {
        let report = self::report(&out.path().join(format!("{report}.json")));
        assert!(report["count"].as_u64().is_some_and(|n| n > 0), "{report}");
    }
}
