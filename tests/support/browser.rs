//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`), for the console's browser tests: chromedriver on a free loopback
//! port, one browser session per test, downloads into a directory of the test's own,
//! screenshots under the build directory and axe-core's accessibility checks.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Where chromedriver is: `CHROMEDRIVER`, else on `PATH`, else Debian's.
fn chromedriver() -> PathBuf {
    if let Ok(path) = std::env::var("CHROMEDRIVER") {
        return path.into();
    }
    for candidate in ["chromedriver", "/usr/bin/chromedriver"] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return candidate.into();
        }
    }
    panic!(
        "the console's browser tests need chromedriver and Chromium: \
         apt-get install chromium chromium-driver (or set CHROMEDRIVER)"
    );
}

/// Chromium itself: `CHROMIUM`, else Debian's.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The build directory: `CARGO_TARGET_DIR`, else the workspace's `target/`.
pub fn build_dir() -> PathBuf {
    match std::env::var("CARGO_TARGET_DIR") {
        Ok(dir) if Path::new(&dir).is_absolute() => dir.into(),
        Ok(dir) => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// Where screenshots go: `<build dir>/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    build_dir().join("console-screenshots")
}

/// axe-core's script: `AXE_CORE_JS`, else where `deploy/dev/axe-core.sh` installs it (it
/// runs before the tests in `make test`; the tests themselves never reach the network).
fn axe_source() -> String {
    let path = std::env::var("AXE_CORE_JS").map_or_else(
        |_| build_dir().join("axe-core/4.10.2/node_modules/axe-core/axe.min.js"),
        PathBuf::from,
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not at {} ({e}): run deploy/dev/axe-core.sh, as make test does",
            path.display()
        )
    })
}

/// chromedriver and one browser session; both end when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    pub downloads: tempfile::TempDir,
    base: String,
}

impl Browser {
    /// A headless Chromium whose pages are `base` + path, asking for `language` first.
    pub async fn start(base: &str, language: &str) -> Self {
        let port = super::free_port();
        // A process group of its own: the browsers it starts go with it (Drop).
        let mut driver = Command::new(chromedriver())
            // Without --allowed-ips, chromedriver listens on loopback only (with it, on
            // every interface).
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let downloads = tempfile::tempdir().expect("download directory");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,4000", format!("--lang={language}"),
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    // Only this machine: no name resolves (the console is reached by its
                    // loopback address), and the browser's own services stay off.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    "--disable-component-update", "--disable-sync", "--disable-default-apps",
                    "--disable-domain-reliability", "--disable-client-side-phishing-detection",
                    "--no-pings", "--dns-prefetch-disable", "--disable-breakpad", "--no-proxy-server",
                ],
                "prefs": {
                    "intl.accept_languages": language,
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        downloads,
                        base: base.trim_end_matches('/').to_string(),
                    };
                }
                Err(err) => last_error = Some(err.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = driver.kill();
        panic!("no browser session: {last_error:?}");
    }

    /// Ends the browser session and chromedriver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }

    /// Opens `path` of the console.
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The element `css`, waiting up to 15 s for it.
    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no {css} on {}: {e}", self.path().await),
        }
    }

    pub async fn click(&self, css: &str) {
        self.element(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap_or_default()
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.element(css).await;
        field.clear().await.ok();
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// The current page's path and query.
    pub async fn path(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_string(),
            },
            Err(_) => String::new(),
        }
    }

    /// Waits up to `seconds` until `css` holds `text`, reloading the page between looks
    /// when `reload`.
    pub async fn wait_for_text(&self, css: &str, text: &str, seconds: u64, reload: bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let seen = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if seen.contains(text) || tokio::time::Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            if reload {
                self.client.refresh().await.ok();
            }
        }
    }

    /// A screenshot of the whole page (not only what the window shows) as `<name>.png`
    /// under [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        // The window starts as tall as any page (the most headless Chromium lets it grow
        // to); it is fitted to the page for the picture.
        let _ = self.client.set_window_size(1280, 4000).await;
        let height = self
            .client
            .execute(
                "return Math.ceil(document.body.getBoundingClientRect().bottom) + 200;",
                Vec::new(),
            )
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(1000)
            .clamp(600, 4000);
        let _ = self.client.set_window_size(1280, height as u32).await;
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// axe-core's serious and critical violations on the page: `id: help (nodes)`.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        self.client
            .execute(&format!("{};return true;", axe_source()), Vec::new())
            .await
            .expect("inject axe-core");
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)))
                   .catch(e => done(['axe failed: ' + e]));",
                Vec::new(),
            )
            .await
            .expect("run axe-core");
        serde_json::from_value(found).unwrap_or_else(|e| vec![format!("axe answered oddly: {e}")])
    }

    /// Waits up to 20 s for a finished download whose name ends with `suffix`.
    pub async fn downloaded(&self, suffix: &str) -> PathBuf {
        for _ in 0..200 {
            let found = std::fs::read_dir(self.downloads.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .find(|path| path.to_string_lossy().ends_with(suffix));
            if let Some(path) = found {
                return path;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no download ending with {suffix}");
    }
}

impl Drop for Browser {
    /// Ends chromedriver and every browser it started, even when a test panicked before
    /// [`Browser::quit`].
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
