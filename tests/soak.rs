//! Soak, on demand: the embedded sandbox under concurrent sign-ins, code exchanges, paging
//! and refreshes from several clients for a few minutes, with memory sampled. Passes when
//! nothing failed and memory stopped growing once the load stopped.
//!
//! `cargo test --release --test soak -- --ignored --nocapture` (ONRAMP_SOAK_SECS, default
//! 120; ONRAMP_SOAK_CLIENTS, default 8).

mod common;

use std::time::{Duration, Instant};

use common::sandbox::{JOHN, code_for, exchange, http};
use onramp::sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, SandboxConfig};
use serde_json::Value;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's resident memory in KiB (the sandbox runs in it).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One client's loop: sign in, exchange, page through every EOB, refresh; until `until`.
/// What it did: (sign-ins, requests).
async fn client(sandbox: &onramp::sandbox::Sandbox, until: Instant) -> (u64, u64) {
    let http = http();
    let (mut sign_ins, mut requests) = (0, 0);
    while Instant::now() < until {
        let code = code_for(sandbox, JOHN, &[]).await;
        let tokens: Value = exchange(sandbox, &code, &[])
            .await
            .json()
            .await
            .expect("tokens");
        sign_ins += 1;
        requests += 4;
        let token = tokens["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let mut next = Some(format!(
            "{}/ExplanationOfBenefit?_count=5",
            sandbox.fhir_base()
        ));
        while let Some(url) = next.take() {
            let page: Value = http
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .expect("page")
                .error_for_status()
                .expect("page 200")
                .json()
                .await
                .expect("page JSON");
            requests += 1;
            next = page["link"]
                .as_array()
                .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
        }
        if let Some(refresh) = tokens["refresh_token"].as_str() {
            http.post(sandbox.token_url())
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", DEMO_CLIENT_ID),
                    ("client_secret", DEMO_CLIENT_SECRET),
                ])
                .send()
                .await
                .expect("refresh")
                .error_for_status()
                .expect("refresh 200");
            requests += 1;
        }
    }
    (sign_ins, requests)
}

#[test]
#[ignore = "minutes long; run on demand"]
fn the_sandbox_holds_up_under_load_and_stops_growing() {
    let seconds = setting("ONRAMP_SOAK_SECS", 120);
    let clients = setting("ONRAMP_SOAK_CLIENTS", 8);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let sandbox = std::sync::Arc::new(common::sandbox::start(SandboxConfig::default()).await);
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            while Instant::now() < until + Duration::from_secs(3) {
                samples.push((started.elapsed().as_secs(), rss_kib()));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples
        });
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                let sandbox = std::sync::Arc::clone(&sandbox);
                tokio::spawn(async move { client(&sandbox, until).await })
            })
            .collect();
        let (mut sign_ins, mut requests) = (0, 0);
        for worker in workers {
            let (s, r) = worker.await.expect("a client failed");
            sign_ins += s;
            requests += r;
        }
        let samples = sampler.await.expect("sampler");
        let peak = samples.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
        let quarter = samples[samples.len() / 4].1;
        let end = samples.last().map_or(0, |(_, kib)| *kib);
        println!(
            "soak: {clients} clients, {seconds} s: {sign_ins} sign-ins, {requests} requests ({:.0}/s), 0 errors; RSS {} MiB at a quarter, {} MiB peak, {} MiB after the load",
            requests as f64 / seconds as f64,
            quarter >> 10,
            peak >> 10,
            end >> 10
        );
        assert!(sign_ins > 0);
        // Grants and tokens are kept while they live, so memory grows a little with each
        // sign-in; nothing else may.
        assert!(
            end <= quarter + 64 * 1024,
            "memory grew from {quarter} KiB to {end} KiB: {samples:?}"
        );
    });
}
