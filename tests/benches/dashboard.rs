//! Dashboard page timings: every view over one month of a
//! 275,000-employee organisation (the scoring benchmark's data,
//! `month::load`), served by the same router `serve` runs, on loopback.
//!
//! For each page: the first request (computes the API results it reads),
//! then 30 more (served from the API's result cache): the server's own
//! time from each answer's `Server-Timing` header (median and slowest),
//! and the page's weight (its HTML plus the assets every page loads).
//!
//! Run: `cargo xtask build-plugins && cargo bench -p xla-tests --bench dashboard -- [scale]`.
//! Results in BENCHMARKS.md.

use anyhow::{Context, Result, bail};
use std::sync::Arc;
use xla_host::store::Store;

mod month;
mod serving;

/// Warm requests per page.
const WARM: usize = 30;
/// The budget of server time per page, ms.
const BUDGET_MS: f64 = 200.0;
/// The budget of page weight, bytes.
const WEIGHT_BUDGET: usize = 500 * 1024;

/// Serves the API and the dashboard over `store`; returns the base URL and a read token.
async fn serve(store: Arc<dyn Store>) -> Result<(String, String)> {
    let (state, token) = serving::state(store).await?;
    Ok((
        serving::on_loopback(xla_host::api::app_with(
            state.clone(),
            xla_host::dashboard::router(state),
        ))
        .await?,
        token,
    ))
}

/// Signs in through the form; returns the `Cookie` header to send.
async fn sign_in(client: &reqwest::Client, base: &str, token: &str) -> Result<String> {
    let response = client
        .post(format!("{base}/dashboard/sign-in"))
        .header("origin", base)
        .form(&[("token", token), ("next", "/dashboard")])
        .send()
        .await?;
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("sign-in set no cookie")?;
    Ok(cookie.to_string())
}

/// One answer: status, server ms, body.
async fn get(client: &reqwest::Client, url: &str, cookie: &str) -> Result<(f64, String)> {
    let response = client.get(url).header("cookie", cookie).send().await?;
    let status = response.status();
    let server_ms = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .context("no Server-Timing")?;
    let body = response.text().await?;
    if !status.is_success() {
        bail!("{url}: {status}");
    }
    Ok((server_ms, body))
}

fn main() -> Result<()> {
    let scale = month::scale();
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    runtime.block_on(async {
        let store = month::store(dir.path(), scale).await?;
        let (base, token) = serve(store).await?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let cookie = sign_in(&client, &base, &token).await?;
        let tenant = format!("{base}/dashboard/tenants/{}", month::TENANT);
        let mut pages: Vec<(String, String)> = [
            "scorecard",
            "xlas/incident-happiness",
            "sla-beside-xla",
            "lost-time",
            "xot",
            "follow-up",
            "sources",
        ]
        .iter()
        .map(|p| (p.to_string(), format!("{tenant}/{p}?period=2026-10")))
        .collect();
        let assets = xla_host::dashboard::assets::page_bytes();
        println!(
            "server time per page (Server-Timing), first request then {WARM} from the result cache; weight = HTML + {} KB of assets:",
            assets / 1024
        );
        let mut worst_warm: f64 = 0.0;
        let mut heaviest = 0;
        let mut index = 0;
        while index < pages.len() {
            let (name, url) = pages[index].clone();
            index += 1;
            let (first, body) = get(&client, &url, &cookie).await?;
            let mut warm = Vec::with_capacity(WARM);
            for _ in 0..WARM {
                warm.push(get(&client, &url, &cookie).await?.0);
            }
            warm.sort_by(f64::total_cmp);
            let median = warm[WARM / 2];
            let slowest = warm[WARM - 1];
            let weight = body.len() + assets;
            worst_warm = worst_warm.max(slowest);
            heaviest = heaviest.max(weight);
            println!(
                "  {name:<24} first {first:>8.1} ms   cached: median {median:>6.2} ms, slowest {slowest:>6.2} ms   {:>4} KB",
                weight / 1024
            );
            // The ticket page: the first ticket the follow-up list links.
            if name == "follow-up"
                && let Some(ticket) = body.split("/tickets/").nth(1).and_then(|rest| rest.split('"').next())
            {
                pages.push(("ticket".into(), format!("{tenant}/tickets/{ticket}")));
            }
        }
        println!(
            "slowest cached page {worst_warm:.2} ms (budget {BUDGET_MS} ms); heaviest page {} KB (budget {} KB)",
            heaviest / 1024,
            WEIGHT_BUDGET / 1024
        );
        anyhow::Ok(())
    })?;
    Ok(())
}
