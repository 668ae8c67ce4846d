//! The cluster's plumbing against the real PostgreSQL and Redis: schema
//! checks, and pub/sub between two nodes' buses.

use std::sync::Arc;
use std::time::Duration;

use rt_server::Config;
use rt_server::cluster::testing::{TestDb, redis_url};
use rt_server::cluster::{Bus, BusEvent, Cluster, ClusterError, Pg, PgError};
use tokio_util::sync::CancellationToken;

fn settings(db: &TestDb) -> rt_server::cluster::ClusterConfig {
    Config::for_cluster_tests(&db.url, None, "t").cluster
}

#[tokio::test]
async fn migrations_apply_once_and_newer_or_foreign_schemas_are_refused() {
    let db = TestDb::create().await;
    let a = Pg::connect(&db.url, &settings(&db), "a".into())
        .await
        .unwrap();
    // A second node finds everything applied and the same cluster id.
    let b = Pg::connect(&db.url, &settings(&db), "b".into())
        .await
        .unwrap();
    assert_eq!(a.cluster_id(), b.cluster_id());
    assert_eq!(a.cluster_id().len(), 32);

    a.get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO rt_migrations VALUES ('9999-from-the-future', 0)",
            &[],
        )
        .await
        .unwrap();
    match Pg::connect(&db.url, &settings(&db), "c".into()).await {
        Err(PgError::TooNew { migration, .. }) => assert_eq!(migration, "9999-from-the-future"),
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }

    let other = TestDb::create().await;
    let (client, conn) = tokio_postgres::connect(&other.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE invoices (id int)")
        .await
        .unwrap();
    match Pg::connect(&other.url, &settings(&other), "d".into()).await {
        Err(e @ PgError::Foreign { .. }) => {
            let line = e.to_string();
            assert!(line.contains("invoices") && !line.contains('\n'), "{line}");
        }
        Err(e) => panic!("expected Foreign, got {e}"),
        Ok(_) => panic!("a foreign schema was accepted"),
    }
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let mut s = Config::for_tests().cluster;
    s.timeout_ms = 500;
    s.database = Some("postgres://rt:hunter2@127.0.0.1:9/rt".into());
    let err = Cluster::start(&s, CancellationToken::new())
        .await
        .err()
        .expect("refused");
    let line = err.to_string();
    assert!(line.contains("cannot reach PostgreSQL"), "{line}");
    assert!(!line.contains("hunter2"), "the password leaked: {line}");

    s.database = None;
    s.redis = Some(redis_url());
    assert!(matches!(
        Cluster::start(&s, CancellationToken::new()).await.err(),
        Some(ClusterError::RedisWithoutDatabase)
    ));
}

async fn next_message(sub: &mut rt_server::cluster::Subscription) -> (Arc<str>, bool, Vec<u8>) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), sub.recv()).await {
            Ok(Some(BusEvent::Message {
                from,
                from_self,
                payload,
            })) => {
                return (from, from_self, payload.to_vec());
            }
            Ok(Some(BusEvent::Resync)) => continue,
            Ok(None) => panic!("bus closed"),
            Err(_) => panic!("no message within 5 s"),
        }
    }
}

#[tokio::test]
async fn buses_of_one_cluster_hear_each_other_and_no_one_else() {
    let stop = CancellationToken::new();
    let a = Bus::connect(&redis_url(), "clusterx", "a".into(), stop.clone())
        .await
        .unwrap();
    let b = Bus::connect(&redis_url(), "clusterx", "b".into(), stop.clone())
        .await
        .unwrap();
    let stranger = Bus::connect(&redis_url(), "clustery", "a".into(), stop.clone())
        .await
        .unwrap();
    let mut on_a = a.subscribe("topic").await.unwrap();
    let mut on_b = b.subscribe("topic").await.unwrap();
    let mut on_stranger = stranger.subscribe("topic").await.unwrap();

    for i in 0..100u32 {
        a.publish("topic", format!("m{i}\nwith a newline").as_bytes())
            .await
            .unwrap();
    }
    for i in 0..100u32 {
        let want = format!("m{i}\nwith a newline").into_bytes();
        assert_eq!(
            next_message(&mut on_b).await,
            ("a".into(), false, want.clone())
        );
        assert_eq!(next_message(&mut on_a).await, ("a".into(), true, want));
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), on_stranger.recv())
            .await
            .is_err(),
        "another cluster's message arrived"
    );

    // Dropping a subscription unsubscribes; the other one still hears.
    drop(on_a);
    b.publish("topic", b"after").await.unwrap();
    assert_eq!(next_message(&mut on_b).await.2, b"after".to_vec());
    stop.cancel();
}

#[tokio::test]
async fn a_cut_database_refuses_and_recovers_and_a_restarted_redis_resyncs() {
    use rt_server::cluster::testing::{PrivateRedis, TcpCut, postgres_addr, via};
    let db = TestDb::create().await;
    let cut = TcpCut::start(postgres_addr()).await;
    let mut s = settings(&db);
    s.database = Some(via(&db.url, cut.addr));
    s.timeout_ms = 1000;
    let pg = Pg::connect(s.database.as_deref().unwrap(), &s, "a".into())
        .await
        .unwrap();
    cut.cut();
    let failed = async {
        let c = pg.get().await?;
        pg.with_timeout(c.query_one("SELECT 1", &[])).await??;
        Ok::<_, PgError>(())
    };
    assert!(
        failed.await.is_err(),
        "a query went through a cut connection"
    );
    cut.restore();
    let mut back = false;
    for _ in 0..50 {
        if let Ok(c) = pg.get().await
            && c.query_one("SELECT 1", &[]).await.is_ok()
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the pool did not recover");

    let mut redis = PrivateRedis::start();
    let stop = CancellationToken::new();
    let a = Bus::connect(&redis.url(), "c", "a".into(), stop.clone())
        .await
        .unwrap();
    let mut sub = a.subscribe("t").await.unwrap();
    redis.restart();
    // The subscriber hears of the reconnect, and hears messages again.
    let mut resynced = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(BusEvent::Resync)) =
            tokio::time::timeout(Duration::from_millis(200), sub.recv()).await
        {
            resynced = true;
            break;
        }
    }
    assert!(resynced, "no Resync after Redis restarted");
    let mut heard = false;
    for _ in 0..50 {
        let _ = a.publish("t", b"again").await;
        if let Ok(Some(BusEvent::Message { payload, .. })) =
            tokio::time::timeout(Duration::from_millis(200), sub.recv()).await
        {
            assert_eq!(&payload[..], b"again");
            heard = true;
            break;
        }
    }
    assert!(heard, "no message after the reconnect");
    stop.cancel();
}
