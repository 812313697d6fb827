//! Scale-out: two instances of every service, each its own `certd <service>` process and its
//! own NATS user (`deploy/nats/certflow.conf`), on one NATS. Commands spread over queue
//! groups, reactions over the services' shared durable consumers, and each projection
//! replica keeps its own sled database and position in the log. Every flow runs through both gateways
//! at once and completes once; both replicas show all of it; the CRL lists every
//! revocation; and with one instance of each service killed, the others carry on.

use std::time::Duration;

use certflow_testkit::{NatsServer, eventually};

use crate::support;
use crate::support::flows::{self, Clients, Ground, PER_FLOW, Round, SERVICES, ServiceSet};

/// Both instances of every service, named `<service>-a` and `<service>-b`.
struct TwoOfEach {
    nats: NatsServer,
    ground: Ground,
    set: ServiceSet,
    a: Clients,
    b: Clients,
    b_endpoint: String,
    /// Where each projection replica serves its metrics.
    projection_metrics: [u16; 2],
}

impl TwoOfEach {
    async fn start() -> Self {
        let nats = NatsServer::start_secured().expect("nats with a user per service");
        let ground = Ground::new().await;
        let args = ground.certd_args(&nats.url());
        let mut set = ServiceSet::new(args, ground.dir.path()).with_env(nats.users().variables());
        set.provision();
        let ports = [support::free_port(), support::free_port()];
        let projection_metrics = [support::free_port(), support::free_port()];
        for ((instance, port), metrics) in ["a", "b"].into_iter().zip(ports).zip(projection_metrics)
        {
            for service in SERVICES {
                let own: Vec<String> = match service {
                    // A read replica: its own database and its own position in the log.
                    "projection" => vec![
                        "--data-dir".into(),
                        ground.dir.path().join(instance).display().to_string(),
                        "--metrics-listen".into(),
                        format!("127.0.0.1:{metrics}"),
                    ],
                    "gateway" => vec!["--listen".into(), format!("127.0.0.1:{port}")],
                    _ => Vec::new(),
                };
                set.spawn(&format!("{service}-{instance}"), service, own);
            }
        }
        let a = flows::connect(&format!("http://127.0.0.1:{}", ports[0])).await;
        let b_endpoint = format!("http://127.0.0.1:{}", ports[1]);
        let b = flows::connect(&b_endpoint).await;
        TwoOfEach {
            a: flows::clients(a, &ground.signing_key),
            b: flows::clients(b, &ground.signing_key),
            nats,
            ground,
            b_endpoint,
            set,
            projection_metrics,
        }
    }

    /// Runs round `number` through `clients`: every flow started, driven to completion,
    /// nothing recorded twice.
    async fn round(&self, clients: &Clients, number: usize) -> Round {
        let round = flows::prepare(clients, number).await;
        flows::start_flows(clients, &round).await;
        let done = flows::drive_to_completion(clients, &self.ground.dns, &round).await;
        assert!(
            done,
            "round {number}: flows stuck with two of each service (logs in {:?})",
            self.ground.dir.path()
        );
        let repeated = flows::repeated_events(clients, &round).await;
        assert!(
            repeated.is_empty(),
            "round {number}: events appended twice with two of each service: {repeated:?}"
        );
        round
    }

    /// Waits until both projection replicas have applied the whole log, as each one's
    /// `certflow_projection_applied_sequence` metric says.
    async fn replicas_caught_up(&self) -> Option<u64> {
        let operator = self
            .nats
            .connect_as(Some("operator"))
            .await
            .expect("operator");
        let js = async_nats::jetstream::new(operator);
        eventually(Duration::from_secs(30), || {
            let js = js.clone();
            async move {
                let mut stream = js.get_stream("CERTFLOW_EVENTS").await.ok()?;
                let last = stream.info().await.ok()?.state.last_sequence;
                for port in self.projection_metrics {
                    if applied_sequence(port).await? != last {
                        return None;
                    }
                }
                Some(last)
            }
        })
        .await
    }
}

/// The applied sequence a projection replica reports on its metrics port.
async fn applied_sequence(port: u16) -> Option<u64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|line| line.starts_with("certflow_projection_applied_sequence"))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[tokio::test]
async fn two_of_each_service_every_flow_completes_once() {
    let mut two = TwoOfEach::start().await;

    // One round through each gateway, at the same time.
    let (first, second) = tokio::join!(two.round(&two.a, 0), two.round(&two.b, 1));

    // Each gateway shows what was done through the other: both read replicas hold it all.
    assert!(flows::completed(&two.b, &first).await);
    assert!(flows::completed(&two.a, &second).await);
    let last = two.replicas_caught_up().await;
    assert!(
        last.is_some(),
        "both projection replicas apply the whole log"
    );

    // Every GeoTrust revocation of both rounds (at once and by DNS proof) is on the CRL,
    // whichever issuance instance signed it.
    let geotrust_revoked = 2 * 2 * PER_FLOW as u64;
    let channel = flows::connect(&two.b_endpoint).await;
    let crls = support::geotrust_crls_listing(channel, geotrust_revoked).await;
    assert!(
        crls.is_some(),
        "the GeoTrust CRLs list the {geotrust_revoked} revoked certificates"
    );

    // One instance of every service gone: the others carry every flow.
    for service in SERVICES {
        two.set.kill(&format!("{service}-a"));
    }
    let third = two.round(&two.b, 2).await;
    assert!(flows::completed(&two.b, &first).await);
    for round in [&first, &second, &third] {
        flows::delete_revoked(&two.b, round).await;
    }
}
