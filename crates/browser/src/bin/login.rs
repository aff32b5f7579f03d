//! `countersign-browser-login --pages PAGES.toml --data-dir DIR [--base-url URL]`:
//! opens a visible browser window on the seller center's login page, in the profile the
//! browser connector uses. Sign in (and pass any verification) by hand, then close the
//! window; the connector then works inside that session. Nothing typed here is read or
//! stored by Countersign.

use std::path::PathBuf;
use std::process::ExitCode;

use countersign_browser::{BrowserOptions, PageActions, open_login_window};

fn usage() -> ExitCode {
    eprintln!("usage: countersign-browser-login --pages PAGES.toml --data-dir DIR [--base-url URL] [--no-sandbox]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut pages = None;
    let mut data_dir = None;
    let mut base_url = None;
    let mut no_sandbox = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pages" => pages = args.next().map(PathBuf::from),
            "--data-dir" => data_dir = args.next().map(PathBuf::from),
            "--base-url" => base_url = args.next(),
            "--no-sandbox" => no_sandbox = true,
            _ => return usage(),
        }
    }
    let (Some(pages), Some(data_dir)) = (pages, data_dir) else {
        return usage();
    };
    let mut actions = match PageActions::load(&pages) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(url) = base_url {
        actions = match actions.with_base_url(&url) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: --base-url: {e}");
                return ExitCode::FAILURE;
            }
        };
    }
    let options = BrowserOptions { headless: false, no_sandbox, ..BrowserOptions::new(data_dir) };
    eprintln!(
        "Sign in to {} in the window that opens, then close it. Profile: {}",
        actions.base_url,
        options.profile_dir(&actions.profile).display()
    );
    match open_login_window(&actions, &options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
