//! Read-your-writes through the gateway: a read that sends back the `Document-Position`
//! of the create before it is never stale. 1,000 create-then-read pairs with the token must
//! see every document at once; the same pairs without it show what the token costs (and
//! how often a read right after a write misses it). Figures are printed; run with
//! `--nocapture` to see them.

use std::time::{Duration, Instant};

use events::{DocumentId, Position, mime, position};

const PAIRS: usize = 1000;

/// One create, then one read of it right away; returns the pair's duration and whether
/// the read saw the document.
async fn pair(
    client: &reqwest::Client,
    base: &str,
    n: usize,
    with_token: bool,
) -> (Duration, bool) {
    let text = format!("ryw {n}");
    let started = Instant::now();
    let created = client
        .post(format!("{base}/producer/documents"))
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(format!(r#"{{"author":"e2e","text":"{text}"}}"#))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let at = created
        .headers()
        .get(position::HEADER)
        .expect("a 201 names its Document-Position")
        .to_str()
        .unwrap()
        .to_owned();
    Position::parse(&at).expect("a well-formed position");
    let id = created.json::<DocumentId>().await.unwrap().id;
    let mut read = client.get(format!("{base}/reader/documents/{id}"));
    if with_token {
        read = read.header(position::HEADER, &at);
    }
    let response = read.send().await.expect("read");
    let status = response.status();
    let fresh = status == 200
        && response
            .json::<events::Document>()
            .await
            .unwrap()
            .text
            .as_deref()
            == Some(&text);
    assert!(
        status == 200 || status == 404,
        "read of {id} at {at}: {status}"
    );
    (started.elapsed(), fresh)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::test]
async fn a_thousand_create_then_read_pairs_with_the_token_are_never_stale() {
    let client = testkit::http();
    let base = e2e::check_gateway(&client).await;
    // Alternating, so both kinds meet the same load on a shared machine.
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let (mut stale_with, mut stale_without) = (0, 0);
    for n in 0..PAIRS {
        let (took, fresh) = pair(&client, &base, n, true).await;
        with.push(took);
        stale_with += usize::from(!fresh);
        let (took, fresh) = pair(&client, &base, n, false).await;
        without.push(took);
        stale_without += usize::from(!fresh);
    }
    with.sort();
    without.sort();
    let line = |name: &str, sorted: &[Duration], stale: usize| {
        println!(
            "{name}: p50 {}, p99 {}, stale reads {stale} of {PAIRS}",
            ms(percentile(sorted, 0.5)),
            ms(percentile(sorted, 0.99))
        );
    };
    line(
        "create-then-read with Document-Position   ",
        &with,
        stale_with,
    );
    line(
        "create-then-read without Document-Position",
        &without,
        stale_without,
    );
    println!(
        "added by the token: p50 {}, p99 {}",
        ms(percentile(&with, 0.5).saturating_sub(percentile(&without, 0.5))),
        ms(percentile(&with, 0.99).saturating_sub(percentile(&without, 0.99)))
    );
    assert_eq!(stale_with, 0, "reads with the token must never be stale");
}
