//! Many instances on one connection: concurrent streams keep their own order; sequential
//! instances leave no per-instance state behind.

use crate::support::*;
use pie::InstanceEvent;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_instances_each_get_their_own_events_in_order() {
    const N: usize = 1000;
    let sim = sim();
    let c = client(&sim).await;
    // Each instance writes, waits for a message from its task, then streams more.
    let h = upload_script(
        &c,
        "stdout $1:a\nrecv\nstdout $1:b\nmessage $1:c\nstderr $1:d\nstdout $1:e\ncomplete $1",
    )
    .await;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let c = c.clone();
        let h = h.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let inst = c
                .launch_instance(&h, vec![i.to_string()], false)
                .await
                .unwrap();
            assert_eq!(
                recv(&inst).await.unwrap(),
                InstanceEvent::Stdout(format!("{i}:a"))
            );
            // All N instances are alive at once from here on.
            barrier.wait().await;
            inst.send(&format!("go{i}")).await.unwrap();
            let got = collect(&inst).await;
            assert_eq!(
                got,
                vec![
                    InstanceEvent::Stdout(format!("go{i}")),
                    InstanceEvent::Stdout(format!("{i}:b")),
                    InstanceEvent::Message(format!("{i}:c")),
                    InstanceEvent::Stderr(format!("{i}:d")),
                    InstanceEvent::Stdout(format!("{i}:e")),
                    InstanceEvent::Completed(i.to_string()),
                ],
                "instance {i}"
            );
        }));
    }
    for t in tasks {
        tokio::time::timeout(deadline() * 3, t)
            .await
            .expect("instance task finished in time")
            .unwrap();
    }
    c.ping().await.unwrap();
    let d = c.debug_counts();
    assert_eq!((d.pending, d.instances, d.unrouted_events), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sequential_instances_leave_no_state() {
    const N: usize = 10_000;
    let sim = sim();
    let c = client(&sim).await;
    let h = upload_script(&c, "stdout $1\nmessage m\ncomplete $1").await;
    let mut max_routes = 0;
    for i in 0..N {
        let inst = c
            .launch_instance(&h, vec![i.to_string()], false)
            .await
            .unwrap();
        let got = collect(&inst).await;
        assert_eq!(got.len(), 3, "instance {i}");
        assert_eq!(got[2], InstanceEvent::Completed(i.to_string()));
        max_routes = max_routes.max(c.debug_counts().instances);
    }
    c.ping().await.unwrap();
    let d = c.debug_counts();
    // Per-instance state is released at the terminal event: at most the one live instance was
    // ever routed, and nothing remains.
    assert!(max_routes <= 1, "{max_routes}");
    assert_eq!(
        (d.pending, d.instances, d.blob_assemblies, d.unrouted_events),
        (0, 0, 0, 0)
    );
    assert_eq!(sim.instance_count(), 0);
}
