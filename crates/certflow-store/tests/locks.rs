//! REI-4's reservations against a real nats-server: one holder per registrable domain,
//! however many take at once.

use certflow_domain::CertificateId;
use certflow_store::{LockHolder, ReissueLocks, Reservation};
use certflow_testkit::NatsServer;

fn holder(n: usize) -> LockHolder {
    LockHolder {
        reissue_id: format!("reissue-{n}"),
        certificate_id: CertificateId::parse(&format!("cert-{n}")).expect("id"),
    }
}

async fn locks(nats: &NatsServer) -> ReissueLocks {
    let client = nats.connect_as(None).await.expect("client");
    certflow_store::provision(client.clone(), &Default::default())
        .await
        .expect("provision");
    ReissueLocks::attach(client).await.expect("stream")
}

#[tokio::test]
async fn rei4_of_twenty_concurrent_takers_exactly_one_holds_the_domain() {
    let nats = NatsServer::start().expect("nats");
    let locks = locks(&nats).await;
    let takers: Vec<_> = (0..20)
        .map(|n| {
            let locks = locks.clone();
            tokio::spawn(async move { (n, locks.take("example.co.uk", &holder(n)).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for taker in takers {
        let (n, outcome) = taker.await.expect("task");
        match outcome.expect("answered") {
            Reservation::Taken => winners.push(n),
            Reservation::Busy {
                holder: current, ..
            } => {
                assert_ne!(current, holder(n), "busy with someone else");
            }
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = holder(winners[0]);
    assert_eq!(
        locks.holder("example.co.uk").await.expect("read"),
        Some(winner.clone())
    );
    // Another registrable domain is free.
    assert_eq!(
        locks.take("example.org", &holder(99)).await.expect("take"),
        Reservation::Taken
    );
    // Taking again as the holder is fine; releasing as someone else frees nothing.
    assert_eq!(
        locks.take("example.co.uk", &winner).await.expect("take"),
        Reservation::Taken
    );
    locks
        .release("example.co.uk", &holder(98))
        .await
        .expect("release");
    assert_eq!(
        locks.holder("example.co.uk").await.expect("read"),
        Some(winner.clone())
    );
    // Released by its holder, the next can take it.
    locks
        .release("example.co.uk", &winner)
        .await
        .expect("release");
    assert_eq!(locks.holder("example.co.uk").await.expect("read"), None);
    assert_eq!(
        locks
            .take("example.co.uk", &holder(50))
            .await
            .expect("take"),
        Reservation::Taken
    );
}

#[tokio::test]
async fn rei4_a_stale_hold_is_taken_over_once() {
    let nats = NatsServer::start().expect("nats");
    let locks = locks(&nats).await;
    assert_eq!(
        locks.take("example.com", &holder(1)).await.expect("take"),
        Reservation::Taken
    );
    let Reservation::Busy {
        holder: stale,
        sequence,
        ..
    } = locks.take("example.com", &holder(2)).await.expect("take")
    else {
        panic!("held by the first");
    };
    assert_eq!(stale, holder(1));
    // Two takers agree the first is gone: one takes over.
    let (second, third) = (holder(2), holder(3));
    let (a, b) = tokio::join!(
        locks.take_over("example.com", sequence, &second),
        locks.take_over("example.com", sequence, &third),
    );
    let won = [a.expect("answered"), b.expect("answered")];
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let now_held = locks.holder("example.com").await.expect("read");
    assert!(now_held == Some(holder(2)) || now_held == Some(holder(3)));
}
