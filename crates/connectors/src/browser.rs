//! What a workspace says about a browser connector (`[connector] kind = "browser"`), and
//! the checks its values share with the page-actions file.
//!
//! It lives here because two crates need it and neither may depend on the other: the
//! engine parses it from `workspace.toml` (errors at `file:line:column`), and
//! `countersign-browser` builds the connector from it (`connector_for_workspace`), which
//! the faces (the CLI, the desktop app) hand to the engine.

use std::path::PathBuf;

/// A workspace's browser connector, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSettings {
    /// The page-actions file (how each action is done on the pages).
    pub pages: PathBuf,
    /// The seller center's address, instead of the page-actions file's `base_url`.
    pub base_url: Option<String>,
    /// `PLATFORM/STORE`: the persistent browser profile the agent signed in to, instead
    /// of the page-actions file's `profile`.
    pub profile: Option<String>,
    /// The browser binary (default: `$COUNTERSIGN_CHROMIUM`, then `chromium`… on `PATH`).
    pub executable: Option<PathBuf>,
    /// No window. The default: the agent watches the steps in the app, not in a browser.
    pub headless: bool,
    /// Chromium's `--no-sandbox`, for containers where its sandbox cannot start.
    pub no_sandbox: bool,
}

/// A seller center's address for its pages: `https://host[:port]`, or `http://` on
/// loopback only; no credentials, path, query or fragment. Returns it without a
/// trailing slash.
pub fn check_pages_base_url(url: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url:?} is not an absolute URL"))?;
    if rest.contains('@') || rest.contains('/') || rest.contains('?') || rest.contains('#') || rest.is_empty() {
        return Err(format!("{url:?}: give scheme://host[:port] only (no credentials, path or query)"));
    }
    let host = rest.rsplit_once(':').map_or(rest, |(h, port)| if port.parse::<u16>().is_ok() { h } else { rest });
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    match scheme {
        "https" => Ok(url.to_owned()),
        "http" if loopback => Ok(url.to_owned()),
        "http" => Err(format!("{url:?}: plain http only on loopback; use https")),
        _ => Err(format!("{url:?}: the scheme must be https (or http on loopback)")),
    }
}

/// A browser profile's name, `PLATFORM/STORE`: two folder names of letters, digits, `-`,
/// `_` and `.` (never `.` or `..`), so it stays under the data dir.
pub fn check_profile(profile: &str) -> Result<(), String> {
    let part = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
    };
    match profile.split_once('/') {
        Some((platform, store)) if part(platform) && part(store) => Ok(()),
        _ => Err(format!("profile {profile:?} must be PLATFORM/STORE (letters, digits, '-', '_', '.')")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_https_or_loopback_http_and_nothing_more() {
        assert_eq!(check_pages_base_url("https://sellers.example.com/").unwrap(), "https://sellers.example.com");
        assert_eq!(check_pages_base_url("http://127.0.0.1:8787").unwrap(), "http://127.0.0.1:8787");
        assert_eq!(check_pages_base_url("http://localhost").unwrap(), "http://localhost");
        for bad in [
            "http://example.com",
            "http://127.0.0.1.example.com",
            "ftp://127.0.0.1",
            "https://user:pw@example.com",
            "https://example.com/seller",
            "https://example.com?x=1",
            "example.com",
        ] {
            assert!(check_pages_base_url(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn profiles_are_two_plain_folder_names() {
        check_profile("demo_seller_center/acme-us").unwrap();
        check_profile("shop.example/store.1").unwrap();
        for bad in ["demo", "a/b/c", "../x", "a/..", "a/", "/b", "a b/c", "a/ä"] {
            assert!(check_profile(bad).is_err(), "{bad} must be refused");
        }
    }
}
