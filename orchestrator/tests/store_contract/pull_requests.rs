//! Pull request records: asked for with the task (one transaction), claimed by one
//! opener at a time, finished once, asked for again after a failure, and the sealed
//! token dropped once it is not needed.

use std::time::Duration;

use orchestrator::pr::{PrOutcome, PrState, PullRequestAsk, SealedToken};

use super::*;

const STALE: Duration = Duration::from_secs(600);

fn asking(owner: &str) -> NewTask {
    NewTask {
        pull_request: Some(PullRequestAsk {
            base: Some("develop".into()),
            title: None,
            sealed_token: Some(SealedToken("v1.sealed".into())),
        }),
        ..git_task(owner)
    }
}

pub async fn a_pull_request_is_stored_with_its_task_and_opened_once(fx: Fixture) {
    let store = &*fx.store;
    let plain = create(store, git_task(&unique_owner())).await;
    assert_eq!(store.pull_request(plain.id).await.unwrap(), None);
    assert_eq!(
        store.start_pull_request(plain.id, STALE).await.unwrap(),
        None
    );

    let task = create(store, asking(&unique_owner())).await;
    let record = store.pull_request(task.id).await.unwrap().unwrap();
    assert_eq!(record.state, PrState::Requested);
    assert_eq!(record.ask.base.as_deref(), Some("develop"));
    assert_eq!(
        record.ask.sealed_token,
        Some(SealedToken("v1.sealed".into()))
    );
    assert_eq!(record.tries, 0);

    // One opener at a time; a second claim finds nothing to do.
    let claimed = store
        .start_pull_request(task.id, STALE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((claimed.state, claimed.tries), (PrState::Opening, 1));
    assert_eq!(
        store.start_pull_request(task.id, STALE).await.unwrap(),
        None
    );
    // Nor can it be asked for again while it is being opened.
    let again = store
        .ask_pull_request(task.id, PullRequestAsk::default(), STALE)
        .await
        .unwrap();
    assert!(!again);

    let url = "https://github.example/acme/w/pull/1".to_string();
    let opened = PrOutcome::Opened { url: url.clone() };
    assert!(store.finish_pull_request(task.id, &opened).await.unwrap());
    assert!(!store.finish_pull_request(task.id, &opened).await.unwrap());
    let record = store.pull_request(task.id).await.unwrap().unwrap();
    assert_eq!(record.state, PrState::Opened);
    assert_eq!(record.ask.sealed_token, None, "the token outlived its use");
    assert_eq!(store.get(task.id).await.unwrap().unwrap().pr_url, Some(url));
    assert!(
        !store
            .ask_pull_request(task.id, PullRequestAsk::default(), STALE)
            .await
            .unwrap()
    );
}

pub async fn a_failed_pull_request_keeps_its_token_and_may_be_asked_for_again(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, asking(&unique_owner())).await;
    store
        .start_pull_request(task.id, STALE)
        .await
        .unwrap()
        .unwrap();
    let failed = PrOutcome::Failed {
        error: "401 Bad credentials".into(),
    };
    assert!(store.finish_pull_request(task.id, &failed).await.unwrap());
    let record = store.pull_request(task.id).await.unwrap().unwrap();
    assert_eq!(record.state, PrState::Failed);
    assert_eq!(record.error.as_deref(), Some("401 Bad credentials"));
    assert!(record.ask.sealed_token.is_some());
    // A failure is not picked up by itself: only a new ask makes it REQUESTED again.
    assert_eq!(
        store.start_pull_request(task.id, STALE).await.unwrap(),
        None
    );

    // Asked again with a new title and no token: the stored token and base are kept.
    let ask = PullRequestAsk {
        title: Some("Better title".into()),
        ..PullRequestAsk::default()
    };
    assert!(store.ask_pull_request(task.id, ask, STALE).await.unwrap());
    let record = store.pull_request(task.id).await.unwrap().unwrap();
    assert_eq!(record.state, PrState::Requested);
    assert_eq!(record.error, None);
    assert_eq!(record.ask.title.as_deref(), Some("Better title"));
    assert_eq!(record.ask.base.as_deref(), Some("develop"));
    assert_eq!(
        record.ask.sealed_token,
        Some(SealedToken("v1.sealed".into()))
    );
    let claimed = store
        .start_pull_request(task.id, STALE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.tries, 2);

    let skipped = PrOutcome::Skipped {
        reason: "the agent changed nothing".into(),
    };
    assert!(store.finish_pull_request(task.id, &skipped).await.unwrap());
    let record = store.pull_request(task.id).await.unwrap().unwrap();
    assert_eq!(record.state, PrState::Skipped);
    assert_eq!(record.ask.sealed_token, None);
    assert_eq!(store.get(task.id).await.unwrap().unwrap().pr_url, None);

    // A task that never asked can ask later (the retry route on a completed task).
    let plain = create(store, git_task(&unique_owner())).await;
    let ask = PullRequestAsk {
        sealed_token: Some(SealedToken("v1.other".into())),
        ..PullRequestAsk::default()
    };
    assert!(store.ask_pull_request(plain.id, ask, STALE).await.unwrap());
    let record = store.pull_request(plain.id).await.unwrap().unwrap();
    assert_eq!(record.state, PrState::Requested);
}

pub async fn an_abandoned_opening_is_claimed_again_once_stale(fx: Fixture) {
    let store = &*fx.store;
    let task = create(store, asking(&unique_owner())).await;
    store
        .start_pull_request(task.id, STALE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.start_pull_request(task.id, STALE).await.unwrap(),
        None
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let taken = store
        .start_pull_request(task.id, Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.state, taken.tries), (PrState::Opening, 2));
}
