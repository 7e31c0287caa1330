//! The settings pages in a real browser: Debian's `chromium`, headless,
//! driven through `chromedriver` (WebDriver) against a `callbook serve
//! --emulator` process. An owner opens a settings link, connects Google in
//! the sign-in popup, picks the account's second calendar, connects Outlook
//! in the same window (popups blocked), sees it become active and picks its
//! second calendar, switches back with
//! the radio (from the keyboard), disconnects and sees the fallback, sets up a campaign's
//! Booking step (a validation error first); then a call books on the
//! chosen calendar, checked on the emulator's stored events.
//!
//! Screenshots of every state go to `target/screenshots/settings/`.
//! Needs `chromium` and `chromedriver` (`apt-get install -y chromium
//! chromium-driver`; `.ci/run` installs them); without them the test fails
//! saying so. `CHROMEDRIVER` names another driver binary.

use crate::helpers::free_listen_addr;
use callbook::harness::{frames, CallClient};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_callbook");
const PIPELINE_TOKEN: &str = "pipeline-token-0123456789";
const ADMIN_TOKEN: &str = "admin-token-0123456789abc";
const SAM: &str = "sam@callbook.example";
/// How long the browser may take to show a state. Generous: this bounds a
/// wait, it does not measure anything.
const PATIENCE: Duration = Duration::from_secs(60);

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMEDRIVER") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromedriver"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the settings browser test needs chromium and chromedriver: \
             apt-get install -y chromium chromium-driver (or set CHROMEDRIVER)"
        )
    })
}

async fn wait_for_port(addr: SocketAddr, what: &str) {
    for _ in 0..800 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not start listening on {addr}");
}

/// `callbook serve --emulator` with `prov`; answers the process, its
/// address and the emulator's (read from the log line that names it).
async fn serve(prov: &Path) -> (Proc, SocketAddr, String) {
    let listen = free_listen_addr();
    let mut child = Command::new(BIN)
        .args(["serve", "--emulator", "--listen", &listen])
        .args(["--auth-token", PIPELINE_TOKEN, "--admin-token", ADMIN_TOKEN])
        .arg("--provisioning")
        .arg(prov)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the log to its end, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let found = serde_json::from_str::<Value>(&line)
                .ok()
                .and_then(|v| v["fields"]["emulator"].as_str().map(str::to_string));
            if let Some(url) = found {
                if let Some(sender) = tx.take() {
                    let _ = sender.send(url);
                }
            }
        }
    });
    let emulator = tokio::task::spawn_blocking(move || rx.recv_timeout(PATIENCE))
        .await
        .unwrap()
        .expect("serve --emulator logs the emulator's address");
    let addr: SocketAddr = listen.parse().unwrap();
    wait_for_port(addr, "callbook serve").await;
    (proc, addr, emulator)
}

async fn admin(addr: SocketAddr, method: reqwest::Method, path: &str, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .request(method, format!("http://{addr}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// Saves a screenshot of what the browser shows now.
struct Shots {
    dir: PathBuf,
}

impl Shots {
    fn new() -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("screenshots")
            .join("settings");
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    async fn take(&self, browser: &Client, name: &str) {
        let png = browser.screenshot().await.unwrap();
        std::fs::write(self.dir.join(format!("{name}.png")), png).unwrap();
    }
}

/// Waits for the element. A lookup the browser answers while the page is
/// navigating (a sign-in leaving and coming back in the same window) fails
/// with "aborted by navigation"; that is asked again, not a failure.
async fn wait(browser: &Client, css: &str) -> fantoccini::elements::Element {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match browser
            .wait()
            .at_most(left)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => return e,
            Err(e) if e.to_string().contains("aborted by navigation") && !left.is_zero() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                let url = browser.current_url().await.map(|u| u.to_string());
                let source = browser.source().await.unwrap_or_default();
                panic!("waiting for {css}: {e} (at {url:?})\n{source}");
            }
        }
    }
}

async fn text(browser: &Client, css: &str) -> String {
    wait(browser, css).await.text().await.unwrap()
}

async fn click(browser: &Client, css: &str) {
    wait(browser, css).await.click().await.unwrap();
}

async fn fill(browser: &Client, css: &str, value: &str) {
    let input = wait(browser, css).await;
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

#[tokio::test]
async fn an_owner_connects_and_sets_up_booking_in_a_real_browser_and_a_call_books_there() {
    let driver_bin = chromedriver();
    let dir = tempfile_dir();
    // alex is connected to Google; sam has no calendar yet, and owns a
    // campaign in Chicago (the zone the emulator gives sam's accounts).
    let mut config: Value = serde_json::from_str(callbook::store::provisioning::DEFAULT).unwrap();
    config["users"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "sam", "name": "Sam Lee", "email": SAM}));
    let mut intro = config["campaigns"][0].clone();
    intro["id"] = json!("sam-intro");
    intro["owner"] = json!("sam");
    intro["name"] = json!("Sam's intro calls");
    intro["booking"]["rules"]["timezone"] = json!("America/Chicago");
    config["campaigns"].as_array_mut().unwrap().push(intro);
    let prov = dir.join("provisioning.json");
    std::fs::write(&prov, config.to_string()).unwrap();
    let (_serve, addr, emulator) = serve(&prov).await;

    // A team and its campaign, owned by sam, who has no calendar yet.
    let mut booking = config["campaigns"][0]["booking"].clone();
    booking["rules"]["timezone"] = json!("America/Chicago");
    booking["rules"]["window"]["days"] = json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);
    booking["rules"]["window"]["start"] = json!("00:00");
    booking["rules"]["window"]["end"] = json!("23:30");
    admin(
        addr,
        reqwest::Method::POST,
        "/v1/teams",
        json!({"id": "sales", "name": "Sales", "members": ["alex", "sam"]}),
    )
    .await;
    let created = admin(
        addr,
        reqwest::Method::POST,
        "/v1/campaigns",
        json!({"id": "spring", "name": "Spring push", "team": "sales", "owner": "sam", "booking": booking}),
    )
    .await;
    assert_eq!(created["booking_state"]["reason"], "owner_not_connected");

    let driver_addr: SocketAddr = free_listen_addr().parse().unwrap();
    let _driver = Proc(
        Command::new(&driver_bin)
            .arg(format!("--port={}", driver_addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver_bin.display())),
    );
    wait_for_port(driver_addr, "chromedriver").await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1000,1300"]}),
    );
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://{driver_addr}"))
        .await
        .expect("a chromium session through chromedriver");
    // The browser is closed whatever happened, then a failure goes on.
    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(drive(
        &browser, addr, &emulator,
    )))
    .await;
    let _ = browser.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn tempfile_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "browser-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn drive(browser: &Client, addr: SocketAddr, emulator: &str) {
    let shots = Shots::new();
    let link = admin(
        addr,
        reqwest::Method::POST,
        "/v1/users/sam/settings_link",
        json!({}),
    )
    .await;
    browser.goto(link["url"].as_str().unwrap()).await.unwrap();
    wait(browser, "#provider-google[data-status='none']").await;
    let url = browser.current_url().await.unwrap();
    assert_eq!(url.path(), "/settings");
    assert!(
        url.query().is_none(),
        "the token stays out of the address bar: {url}"
    );
    shots.take(browser, "01-not-connected").await;

    // The Booking step says to connect a calendar first.
    click(browser, "#campaign-spring").await;
    let prompt = text(browser, "#connect-first").await;
    assert!(prompt.contains("Connect a calendar first"), "{prompt}");
    shots.take(browser, "02-campaign-connect-first").await;
    click(browser, "#connect-first-link").await;

    // Google, through the emulator's consent page in the popup.
    wait(browser, "#provider-google[data-status='none']").await;
    let main = browser.window().await.unwrap();
    // Notes (where it outlives the page's reload) whether the page's
    // window.open gave it a popup.
    browser
        .execute(
            "var open = window.open; window.open = function () { \
               var w = open.apply(window, arguments); \
               sessionStorage.setItem('test.popup', w ? 'opened' : 'blocked'); return w; };",
            vec![],
        )
        .await
        .unwrap();
    click(browser, "#connect-google").await;
    wait(browser, "#provider-google[data-status='active']").await;
    assert_eq!(browser.window().await.unwrap(), main);
    let popup = browser
        .execute("return sessionStorage.getItem('test.popup');", vec![])
        .await
        .unwrap();
    assert_eq!(popup, json!("opened"), "the sign-in ran in a popup");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while browser.windows().await.unwrap().len() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the popup stays open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text(browser, "#status-google").await, "Connected");
    assert_eq!(text(browser, "#zone-google").await, "America/Chicago");
    assert!(text(browser, "#provider-google")
        .await
        .contains("used for bookings"));
    // The calendar dropdown, defaulting to Primary; pick the account's
    // other calendar and save.
    assert!(
        checked_calendar(browser, "google")
            .await
            .0
            .starts_with("Primary"),
        "Primary is the default"
    );
    pick_calendar(browser, "google", BOOKINGS).await;
    shots.take(browser, "03-google-connected").await;

    // Outlook, with popups blocked: the sign-in runs in this window and
    // comes back here; the most recently connected becomes active.
    browser
        .execute("window.open = function () { return null; };", vec![])
        .await
        .unwrap();
    click(browser, "#connect-microsoft").await;
    wait(
        browser,
        "#provider-microsoft[data-status='active'] #in-use-microsoft",
    )
    .await;
    wait_text(browser, "#status", "Calendar connected.").await;
    assert_eq!(text(browser, "#status-microsoft").await, "Connected");
    assert_eq!(text(browser, "#zone-microsoft").await, "America/Chicago");
    assert!(!text(browser, "#provider-google")
        .await
        .contains("used for bookings"));
    // Outlook's other calendar is the one calls will book on.
    assert!(checked_calendar(browser, "microsoft")
        .await
        .0
        .starts_with("Primary"));
    let outlook_calendar = pick_calendar(browser, "microsoft", BOOKINGS).await;
    assert_ne!(outlook_calendar, "primary");
    shots.take(browser, "04-outlook-connected-and-active").await;

    // Back to Google with the radio, from the keyboard: an arrow key moves
    // the choice, Enter on Save saves it.
    wait(browser, "#active-microsoft:checked")
        .await
        .send_keys(&Key::Left.to_string())
        .await
        .unwrap();
    wait(browser, "#active-google:checked").await;
    wait(browser, "#save")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    wait(browser, "#provider-google #in-use-google").await;
    wait_text(browser, "#status", "Saved.").await;
    shots.take(browser, "05-google-active-again").await;

    // Disconnecting the active one falls back to the other.
    click(browser, "#disconnect-google").await;
    wait(browser, "#provider-google[data-status='none']").await;
    wait(browser, "#provider-microsoft #in-use-microsoft").await;
    wait_text(browser, "#status", "Google Calendar disconnected.").await;
    shots.take(browser, "06-disconnected-fallback").await;

    // The Booking step: a field error shown beside its field, then saved.
    click(browser, "#campaign-spring").await;
    wait(browser, "#booking-form").await;
    assert!(browser.find(Locator::Css("#connect-first")).await.is_err());
    fill(browser, "#f-rules-length_minutes", "0").await;
    click(browser, "#save-booking").await;
    let err = wait(browser, "#err-rules-length_minutes:not([hidden])").await;
    assert_eq!(err.text().await.unwrap(), "must be greater than zero");
    shots.take(browser, "07-booking-validation-error").await;
    fill(browser, "#f-rules-length_minutes", "45").await;
    fill(
        browser,
        "#f-title",
        "Spring call with {recipient.firstName}",
    )
    .await;
    click(browser, "#save-booking").await;
    wait_text(browser, "#status", "Saved.").await;
    assert!(text(browser, "#booking-state")
        .await
        .contains("Booking is on"));
    shots.take(browser, "08-booking-saved").await;

    // A call on the campaign books on the Outlook calendar sam chose.
    let booked = book(addr).await;
    let events = |provider: &'static str| {
        let url = format!("{emulator}/_control/events?provider={provider}&email={SAM}");
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }
    };
    let outlook = events("microsoft").await;
    assert_eq!(outlook.len(), 1, "{outlook:?}");
    let event = &outlook[0];
    assert_eq!(event["summary"], "Spring call with Jane", "{event}");
    assert_eq!(event["start"], booked["start"], "{event} {booked}");
    assert_eq!(event["id"], booked["event_id"], "{event} {booked}");
    assert_eq!(event["calendar"], outlook_calendar.as_str(), "{event}");
    let start: chrono::DateTime<chrono::Utc> = event["start"].as_str().unwrap().parse().unwrap();
    let end: chrono::DateTime<chrono::Utc> = event["end"].as_str().unwrap().parse().unwrap();
    assert_eq!(end - start, chrono::Duration::minutes(45), "{event}");
    assert!(events("google").await.is_empty());
}

/// The name every emulated account gives its second calendar.
const BOOKINGS: &str = callbook::calendar::emulator::google::SECONDARY_CALENDAR_NAME;

/// The option chosen in a provider's calendar dropdown: its text and value.
async fn checked_calendar(browser: &Client, provider: &str) -> (String, String) {
    let option = wait(browser, &format!("#calendar-{provider} option:checked")).await;
    let text = option.text().await.unwrap();
    let value = option.attr("value").await.unwrap().unwrap_or_default();
    (text, value)
}

/// Picks the calendar named `name` in a provider's dropdown, saves, and
/// checks the reloaded page shows it chosen; answers its id.
async fn pick_calendar(browser: &Client, provider: &str, name: &str) -> String {
    let select = wait(browser, &format!("#calendar-{provider}")).await;
    select.select_by_label(name).await.unwrap();
    let (_, id) = checked_calendar(browser, provider).await;
    click(browser, "#save").await;
    wait_text(browser, "#status", "Saved.").await;
    let after = checked_calendar(browser, provider).await;
    assert_eq!(after, (name.to_string(), id.clone()), "saved and shown");
    id
}

/// Waits until the element shows exactly `expected` (the page may reload
/// on the way).
async fn wait_text(browser: &Client, css: &str, expected: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        if let Ok(e) = browser.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t == expected {
                    return;
                }
                last = t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} shows {last:?}, not {expected:?}");
}

/// A caller agrees, gives an email, and accepts the first slot; answers the
/// `booked` frame.
async fn book(addr: SocketAddr) -> Value {
    let mut call = CallClient::connect(addr, Some(PIPELINE_TOKEN))
        .await
        .unwrap();
    call.send(&frames::connected()).await.unwrap();
    let params = json!({"campaign_id": "spring", "recipient_phone": "+13125550123",
                        "recipient_first_name": "Jane", "recipient_last_name": "Doe"});
    call.send(&frames::start("CAsettings0000000000000000000001", params))
        .await
        .unwrap();
    let mut seen = call.settle().await.unwrap();
    call.send(&frames::offer()).await.unwrap();
    seen.extend(call.settle().await.unwrap());
    for said in ["yes", "jane at example dot com", "yes", "yes"] {
        call.send(&frames::transcript(said)).await.unwrap();
        seen.extend(call.settle().await.unwrap());
    }
    seen.into_iter()
        .find(|f| f["event"] == "booking" && f["booking"]["status"] == "booked")
        .map(|f| f["booking"].clone())
        .unwrap_or_else(|| panic!("no booked frame"))
}
