//! `countersign-browser-login --pages PAGES.toml --data-dir DIR [--base-url URL]
//! [--profile PLATFORM/STORE] [--no-sandbox]`: opens a visible browser window on the seller
//! center's login page, in the profile the browser connector uses (for a browser
//! workspace: its `pages`, the workspace's own data folder — `<data root>/<workspace id>`,
//! the folder the app and the CLI use for it — and its `base_url` and
//! `profile` if it gives them). Sign in (and pass any verification) by hand, then close
//! the window; the connector then works inside that session. Nothing typed here is read
//! or stored by Countersign.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use countersign_browser::{BrowserOptions, PageActions, open_login_window};

fn usage() -> ExitCode {
    eprintln!(
        "usage: countersign-browser-login --pages PAGES.toml --data-dir DIR [--base-url URL] \
         [--profile PLATFORM/STORE] [--no-sandbox]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut pages = None;
    let mut data_dir = None;
    let mut base_url = None;
    let mut profile = None;
    let mut no_sandbox = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pages" => pages = args.next().map(PathBuf::from),
            "--data-dir" => data_dir = args.next().map(PathBuf::from),
            "--base-url" => base_url = args.next(),
            "--profile" => profile = args.next(),
            "--no-sandbox" => no_sandbox = true,
            _ => return usage(),
        }
    }
    let (Some(pages), Some(data_dir)) = (pages, data_dir) else {
        return usage();
    };
    match sign_in(&pages, data_dir, base_url.as_deref(), profile.as_deref(), no_sandbox) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sign_in(
    pages: &Path,
    data_dir: PathBuf,
    base_url: Option<&str>,
    profile: Option<&str>,
    no_sandbox: bool,
) -> Result<(), String> {
    let mut actions = PageActions::load(pages).map_err(|e| e.to_string())?;
    if let Some(url) = base_url {
        actions = actions.with_base_url(url).map_err(|e| format!("--base-url: {e}"))?;
    }
    if let Some(profile) = profile {
        actions = actions.with_profile(profile).map_err(|e| format!("--profile: {e}"))?;
    }
    let options = BrowserOptions { headless: false, no_sandbox, ..BrowserOptions::new(data_dir) };
    eprintln!(
        "Sign in to {} in the window that opens, then close it. Profile: {}",
        actions.base_url,
        options.profile_dir(&actions.profile).display()
    );
    open_login_window(&actions, &options).map_err(|e| e.to_string())
}
