//! Property-based test of the HTTP API: schemathesis (from PyPI, see
//! `tests/peers/requirements.txt`) reads `/openapi.json` from the real
//! binary on loopback and sends generated requests to every route. Any 5xx
//! or any response that breaks the document's schema fails the test.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EVENTS_KEY: &str = "schemathesis-events-key-0123";
const ADMIN_KEY: &str = "schemathesis-admin-key-0123";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("grito did not listen on 127.0.0.1:{port} within 30 s");
}

#[test]
fn schemathesis_finds_no_server_errors() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_grito"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("grito.db").display()))
        .env("DATA_DIR", dir.path())
        .env("PLUGINS_DIR", dir.path().join("plugins"))
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("EVENTS_API_KEY", EVENTS_KEY)
        .env("ADMIN_API_KEY", ADMIN_KEY)
        .env("STRIPE_WEBHOOK_SECRET", "whsec_schemathesis")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("grito.log")).unwrap())
        .spawn()
        .expect("the grito binary starts");
    let _server = Server(child);
    wait_until_healthy(port);

    let output = Command::new("schemathesis")
        .args(["run", &format!("http://127.0.0.1:{port}/openapi.json")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--header", &format!("X-Api-Key: {EVENTS_KEY}")])
        .args(["--header", &format!("X-Admin-Key: {ADMIN_KEY}")])
        .args(["--max-examples", "25", "--request-timeout", "10", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis is installed: pip install -r tests/peers/requirements.txt");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "schemathesis reported failures:\n{stdout}\n{stderr}");
    assert!(stdout.contains("passed"), "schemathesis ran no operation:\n{stdout}");
}
