//! Every service of the set runs as its own `certd <service>` process, and each in turn is
//! killed with SIGKILL in the middle of flows and started again. Every flow completes, none
//! is stuck, and no certificate's history holds an event twice. The soak test (`make soak`)
//! repeats such rounds for a set time, killing a random service or nats-server each round.

use std::collections::BTreeMap;
use std::time::Duration;

use certflow_testkit::NatsServer;

use crate::support;
use crate::support::flows::{self, Clients, Ground, PER_FLOW, SERVICES, ServiceSet};

/// NATS, a DNS server for proofs, and the service set as processes, with the clients of a
/// customer and a reviewer.
struct Harness {
    nats: NatsServer,
    ground: Ground,
    set: ServiceSet,
    clients: Clients,
}

impl Harness {
    async fn start() -> Self {
        let nats = NatsServer::start().expect("nats");
        let ground = Ground::new().await;
        let gateway_port = support::free_port();
        let mut args = ground.certd_args(&nats.url());
        args.extend([
            "--data-dir".to_string(),
            ground.dir.path().join("data").display().to_string(),
            "--listen".to_string(),
            format!("127.0.0.1:{gateway_port}"),
        ]);
        let set = ServiceSet::start(args, ground.dir.path());
        let channel = flows::connect(&format!("http://127.0.0.1:{gateway_port}")).await;
        let clients = flows::clients(channel, &ground.signing_key);
        Harness {
            nats,
            ground,
            set,
            clients,
        }
    }

    /// SIGKILLs `victim` (a service, or `nats`) and starts it again.
    async fn kill_and_restart(&mut self, victim: &'static str) {
        if victim == "nats" {
            self.nats.kill();
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.nats.restart().expect("nats-server back on its store");
        } else {
            self.set.kill(victim);
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.set.respawn(victim);
        }
    }

    /// One round of every flow, `victim` killed in the middle of it; panics unless every
    /// flow completes with no event recorded twice. Returns how long it took.
    async fn round(&mut self, number: usize, victim: &'static str) -> Duration {
        let started = std::time::Instant::now();
        let round = flows::prepare(&self.clients, number).await;
        let flows = tokio::spawn({
            let (clients, round) = (self.clients.clone(), round.clone());
            async move { flows::start_flows(&clients, &round).await }
        });
        // Mid-flow: some commands answered, reactions under way.
        tokio::time::sleep(Duration::from_millis(40)).await;
        self.kill_and_restart(victim).await;
        flows.await.expect("every flow was accepted");
        let done = flows::drive_to_completion(&self.clients, &self.ground.dns, &round).await;
        assert!(
            done,
            "round {number}: flows stuck after {victim} was killed (logs in {:?})",
            self.ground.dir.path()
        );
        let repeated = flows::repeated_events(&self.clients, &round).await;
        assert!(
            repeated.is_empty(),
            "round {number}: events appended twice after {victim} was killed: {repeated:?}"
        );
        flows::delete_revoked(&self.clients, &round).await;
        started.elapsed()
    }
}

#[tokio::test]
async fn each_service_killed_mid_flow_every_flow_completes_once() {
    let mut harness = Harness::start().await;
    for (number, victim) in SERVICES.into_iter().enumerate() {
        let took = harness.round(number, victim).await;
        println!("{victim} killed mid-flow: every flow complete after {took:?}");
    }
}

/// `make soak`: rounds of every flow for `SOAK_SECONDS` (default 120), each with a fault:
/// a service, or nats-server itself, SIGKILLed mid-flow and restarted, every one in turn
/// from a place `SOAK_SEED` picks.
#[tokio::test]
#[ignore = "long; run by make soak"]
async fn soak_every_flow_with_each_process_killed_in_turn() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    println!("soak: {seconds} s, SOAK_SEED={seed}");
    let victims: Vec<&'static str> = SERVICES.iter().copied().chain(["nats"]).collect();
    let mut harness = Harness::start().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    let mut kills: BTreeMap<&str, u32> = BTreeMap::new();
    let mut number = 0;
    while std::time::Instant::now() < deadline {
        // Every victim in turn, from a place the seed picks.
        let victim = victims[(seed as usize).wrapping_add(number) % victims.len()];
        let took = harness.round(number, victim).await;
        *kills.entry(victim).or_default() += 1;
        println!("soak round {number}: {victim} killed, every flow complete after {took:?}");
        number += 1;
    }
    println!(
        "soak: {number} rounds, {} certificates, nothing stuck or doubled; kills: {kills:?}",
        number * 4 * PER_FLOW
    );
}
