//! What an agent does by hand in the login window, for tests and benchmarks: open the
//! profile, sign in to the demo seller center, close the browser. (The connector itself
//! never signs in.) Shared by the browser crate's tests and bench and the CLI's tests.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;

/// Signs in to the demo seller center at `base_url` in the Chromium profile `profile`
/// with the store's password, as a person would; panics if it does not reach the home page.
pub fn sign_in_by_hand(profile: &Path, base_url: &str, password: &str) {
    std::fs::create_dir_all(profile).expect("the profile folder");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("a runtime");
    rt.block_on(async {
        let exe = countersign_browser::find_chromium(None)
            .expect("Chromium must be installed for these tests (scripts/setup.sh)");
        let config = chromiumoxide::BrowserConfig::builder()
            .chrome_executable(exe)
            .user_data_dir(profile)
            .no_sandbox()
            .build()
            .expect("a browser configuration");
        let (mut browser, mut handler) = chromiumoxide::Browser::launch(config).await.expect("Chromium starts");
        let task = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page(format!("{base_url}/seller/login")).await.expect("the login page");
        for (field, text) in [("#login-user", "agent"), ("#login-password", password)] {
            let input = page.find_element(field).await.expect("a login field");
            input.click().await.expect("focus").type_str(text).await.expect("typing");
        }
        page.find_element("#login-submit").await.expect("the sign-in button").click().await.expect("a click");
        let mut at = String::new();
        for _ in 0..200 {
            at = page.url().await.ok().flatten().unwrap_or_default();
            if at.ends_with("/seller/home") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(at.ends_with("/seller/home"), "signed in by hand (at {at})");
        browser.close().await.expect("the browser closes");
        browser.wait().await.expect("the browser exits");
        task.abort();
    });
}

/// `assets/demo/workspace-browser.toml` of the checkout `repo` with absolute paths, pointed
/// at `base_url`, with Chromium's sandbox off (CI runs as root); written into `dir`.
#[allow(dead_code)] // for the CLI's and the desktop app's tests; the browser crate's own build pages directly
pub fn browser_workspace(repo: &Path, dir: &Path, base_url: &str) -> std::path::PathBuf {
    let demo = repo.join("assets/demo");
    let text = std::fs::read_to_string(demo.join("workspace-browser.toml"))
        .expect("assets/demo/workspace-browser.toml")
        .replace("\"policy.toml\"", &format!("{:?}", demo.join("policy.toml")))
        .replace("\"../knowledge\"", &format!("{:?}", repo.join("assets/knowledge")))
        .replace("\"cases\"", &format!("{:?}", demo.join("cases")))
        .replace("\"pages.toml\"", &format!("{:?}", demo.join("pages.toml")))
        .replace("\"http://127.0.0.1:8787\"", &format!("{base_url:?}"))
        .replace("# no_sandbox = false", "no_sandbox = true");
    let file = dir.join("workspace-browser.toml");
    std::fs::write(&file, text).expect("the workspace file");
    file
}
