//! `perf load`: a bounded load through a gateway (creates, updates and reads at a rate,
//! for a time), so that a deployment's dashboards show traffic. Bounded in count and time
//! and refusing a gateway that is not on loopback unless told otherwise, so that it
//! cannot become a flood by accident.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use uuid::Uuid;

use super::drive;

/// What one load run does.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub gateway: String,
    pub rate: f64,
    pub duration: Duration,
    /// Allow a gateway that is not on loopback.
    pub remote: bool,
}

/// The largest rate and duration a load may have.
pub const MAX_RATE: f64 = 5_000.0;
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Runs the load: each tick creates a document, updates it and reads it back.
pub async fn run(plan: &LoadPlan) -> Result<()> {
    let url = reqwest::Url::parse(&plan.gateway)?;
    let local = url.host_str().is_some_and(|h| {
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if !local && !plan.remote {
        bail!(
            "{} is not on loopback: pass --remote to load a deployment you run",
            plan.gateway
        );
    }
    if !(plan.rate > 0.0 && plan.rate <= MAX_RATE) || plan.duration > MAX_DURATION {
        bail!("a load runs at most {MAX_RATE}/s for at most {MAX_DURATION:?}");
    }
    let gateway = plan.gateway.trim_end_matches('/').to_owned();
    let http = reqwest::Client::new();
    let count = (plan.rate * plan.duration.as_secs_f64()) as usize;
    eprintln!(
        "load: {count} rounds (create, update, read) at {}/s through {gateway}",
        plan.rate
    );
    let started = Instant::now();
    let outcome = drive::open_loop(count, plan.rate, |i| {
        let (http, gateway) = (http.clone(), gateway.clone());
        async move { round(&http, &gateway, i).await }
    })
    .await;
    println!(
        "load: {} rounds in {:.1} s, {} failed; round p50 {:.1} ms, p99 {:.1} ms",
        outcome.latencies.len() + outcome.failed,
        started.elapsed().as_secs_f64(),
        outcome.failed,
        outcome.latencies.p50().as_secs_f64() * 1e3,
        outcome.latencies.p99().as_secs_f64() * 1e3,
    );
    Ok(())
}

async fn round(http: &reqwest::Client, gateway: &str, i: usize) -> bool {
    #[derive(serde::Deserialize)]
    struct Created {
        id: Uuid,
    }
    let Ok(response) = http
        .post(format!("{gateway}/producer/documents"))
        .header("content-type", events::mime::CREATE_DOCUMENT)
        .body(format!(r#"{{"author":"load","text":"round {i}"}}"#))
        .send()
        .await
    else {
        return false;
    };
    let Ok(Created { id }) = response.json::<Created>().await else {
        return false;
    };
    let updated = http
        .put(format!("{gateway}/producer/documents"))
        .header("content-type", events::mime::UPDATE_DOCUMENT)
        .body(format!(r#"{{"id":"{id}","author":"load-{i}"}}"#))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    // The read may come before the persister applied the create: 404 is an answer too.
    let read = http
        .get(format!("{gateway}/reader/documents/{id}"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200 || r.status() == 404);
    updated && read
}
