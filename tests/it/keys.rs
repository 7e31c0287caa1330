//! Token keys as an operator meets them, with the real binary: `serve`
//! refuses to start when its keys do not open what the store holds (a state
//! file, or Redis), and a rotation goes: add the new key first, run
//! `callbook rekey`, then drop the old key.

use base64::Engine;
use callbook::harness::RedisServer;
use callbook::store::secrets::TokenCipher;
use secrecy::SecretString;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn key_id(byte: u8) -> String {
    TokenCipher::from_base64(&SecretString::from(key(byte)))
        .unwrap()
        .sealing_key_id()
        .to_string()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("callbook-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How a `callbook serve` start ended.
#[derive(Debug)]
enum Start {
    /// It listened (and was stopped then).
    Serving,
    /// It exited with this on standard error.
    Refused(String),
}

/// Runs `callbook serve` on its emulators with `keys` as
/// CALLBOOK_TOKEN_KEY and `store` (`--state-file …` or `--redis-url …`),
/// until it listens or exits.
async fn serve(keys: &str, store: &[&str]) -> Start {
    let listen = crate::helpers::free_listen_addr();
    let mut child = Command::new(env!("CARGO_BIN_EXE_callbook"))
        .args(["serve", "--emulator", "--listen", &listen])
        .args(["--auth-token", "pipeline-token-0123456789"])
        .args(store)
        .env("CALLBOOK_TOKEN_KEY", keys)
        .env_remove("CALLBOOK_TOKEN_KEY_ID")
        .env_remove("CALLBOOK_REDIS_URL")
        .env_remove("CALLBOOK_STATE_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(!status.success(), "serve exited 0: {err}");
            return Start::Refused(err);
        }
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            let _ = child.kill();
            let _ = child.wait();
            return Start::Serving;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("callbook serve neither listened nor exited");
}

fn refused(start: Start) -> String {
    match start {
        Start::Refused(err) => err,
        Start::Serving => panic!("serve started with keys that do not open the store"),
    }
}

/// Runs `callbook rekey` with `args` and CALLBOOK_TOKEN_KEY_ID still set
/// (deprecated); returns its report.
fn rekey(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_callbook"))
        .arg("rekey")
        .args(args)
        .env_remove("CALLBOOK_TOKEN_KEY")
        .env("CALLBOOK_TOKEN_KEY_ID", "k1")
        .env_remove("CALLBOOK_REDIS_URL")
        .env_remove("CALLBOOK_STATE_FILE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("CALLBOOK_TOKEN_KEY_ID is ignored"), "{err}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn serve_refuses_a_state_file_its_key_does_not_open() {
    let state = temp_dir().join("state.json");
    let state = state.to_str().unwrap();
    assert!(matches!(
        serve(&key(1), &["--state-file", state]).await,
        Start::Serving
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let err = refused(serve(&key(2), &["--state-file", state]).await);
    assert!(err.contains("CALLBOOK_TOKEN_KEY"), "{err}");
    assert!(
        err.contains(&key_id(1)) && err.contains(&key_id(2)),
        "{err}"
    );
    // Never the key itself.
    assert!(!err.contains(&key(2)), "{err}");
}

#[tokio::test]
async fn serve_refuses_a_redis_its_key_does_not_open() {
    let redis = RedisServer::start().await.unwrap();
    let url = redis.url.as_str();
    assert!(matches!(
        serve(&key(1), &["--redis-url", url]).await,
        Start::Serving
    ));
    let err = refused(serve(&key(2), &["--redis-url", url]).await);
    assert!(err.contains("CALLBOOK_TOKEN_KEY"), "{err}");
    assert!(err.contains(&key_id(1)), "{err}");
}

/// The rotation as the README tells it, on one store.
async fn rotate(store: &[&str]) {
    let (a, b) = (key(1), key(2));
    assert!(matches!(serve(&a, store).await, Start::Serving));
    // 1. The new key first, the old one after it: both open.
    let both = format!("{b},{a}");
    assert!(matches!(serve(&both, store).await, Start::Serving));
    // Dropping the old key before the rekey is refused.
    refused(serve(&b, store).await);
    // 2. Re-seal everything under the new key.
    let mut args: Vec<&str> = store.to_vec();
    args.extend(["--token-key", &b, "--token-key", &a]);
    let report = rekey(&args);
    assert_eq!(report["key_id"], key_id(2), "{report}");
    // The provisioning file's Google token and the key check at least.
    assert!(report["resealed"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(rekey(&args)["resealed"], 0);
    // 3. The old key can go; alone, it opens nothing any more.
    assert!(matches!(serve(&b, store).await, Start::Serving));
    let err = refused(serve(&a, store).await);
    assert!(err.contains("CALLBOOK_TOKEN_KEY"), "{err}");
}

#[tokio::test]
async fn a_state_file_rotates_to_a_new_key_with_rekey() {
    let state = temp_dir().join("state.json");
    rotate(&["--state-file", state.to_str().unwrap()]).await;
}

#[tokio::test]
async fn redis_rotates_to_a_new_key_with_rekey() {
    let redis = RedisServer::start().await.unwrap();
    rotate(&["--redis-url", &redis.url]).await;
}
