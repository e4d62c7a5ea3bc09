//! A real MariaDB server for a test (Debian's `mariadb-server`): a fresh data folder, a free
//! loopback port, TLS required with a certificate made for the test (its CA is what clients
//! trust), the OpenCart tables of `tests/fixtures/opencart/schema.sql` in database
//! `opencart`, and a read-only user. Stopped and deleted on drop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DATABASE: &str = "opencart";
pub const READER: &str = "catalog_reader";
pub const READER_PASSWORD: &str = "reader-pw-not-a-secret";

pub struct MariaDb {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    pub ca: PathBuf,
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e} (is mariadb-server installed?)"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn user() -> String {
    run(Command::new("id").arg("-un"), "id -un").trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A CA and a server certificate for localhost/127.0.0.1, with openssl.
fn certificates(dir: &Path) -> PathBuf {
    let p = |f: &str| dir.join(f).display().to_string();
    run(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=meschain test CA"])
            .args(["-keyout", &p("ca-key.pem"), "-out", &p("ca.pem")]),
        "openssl CA",
    );
    run(
        Command::new("openssl").args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"]).args([
            "-keyout",
            &p("server-key.pem"),
            "-out",
            &p("server.csr"),
        ]),
        "openssl CSR",
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    run(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .args(["-in", &p("server.csr"), "-CA", &p("ca.pem"), "-CAkey", &p("ca-key.pem")])
            .args(["-out", &p("server-cert.pem"), "-extfile", &p("san.ext")]),
        "openssl sign",
    );
    dir.join("ca.pem")
}

impl MariaDb {
    /// Starts a server and creates the schema; panics with the server's log if it cannot.
    pub fn start() -> MariaDb {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let user = user();
        // Each server's temporary tables in its own folder: with the shared /tmp, a bootstrap
        // running beside another test's once failed ("Could not remove temporary table").
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        run(
            Command::new("mariadb-install-db")
                .env("TMPDIR", &tmp)
                .args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"])
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={user}")),
            "mariadb-install-db",
        );
        let ca = certificates(dir.path());
        let port = free_port();
        let f = |name: &str| dir.path().join(name).display().to_string();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", f("mysqld.sock")))
            .arg(format!("--pid-file={}", f("mysqld.pid")))
            .arg(format!("--log-error={}", f("error.log")))
            .arg(format!("--user={user}"))
            .arg(format!("--ssl-ca={}", f("ca.pem")))
            .arg(format!("--ssl-cert={}", f("server-cert.pem")))
            .arg(format!("--ssl-key={}", f("server-key.pem")))
            .args(["--require-secure-transport=ON", "--skip-log-bin", "--innodb-buffer-pool-size=32M"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd");
        // Owned from here: a panic below stops the server.
        let mut db = MariaDb { dir, child, port, ca };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = db.child.try_wait() {
                let log = std::fs::read_to_string(db.dir.path().join("error.log")).unwrap_or_default();
                panic!("mariadbd exited ({status}):\n{log}");
            }
            let ok = db.client(None).args(["-e", "SELECT 1"]).output().is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "mariadbd did not start in 90 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let schema =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/opencart/schema.sql"))
                .unwrap();
        db.sql(None, &format!("CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4"));
        db.sql(Some(DATABASE), &schema);
        db.sql(
            None,
            &format!(
                "CREATE USER '{READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}' REQUIRE SSL; \
                 GRANT SELECT ON {DATABASE}.* TO '{READER}'@'%';"
            ),
        );
        db
    }

    fn client(&self, database: Option<&str>) -> Command {
        let mut c = Command::new("mariadb");
        c.args(["--no-defaults", "-uroot", "-N", "-B"])
            .arg(format!("--socket={}", self.dir.path().join("mysqld.sock").display()));
        if let Some(d) = database {
            c.arg(d);
        }
        c
    }

    /// Runs SQL as root; the output rows, tab-separated.
    pub fn sql(&self, database: Option<&str>, sql: &str) -> String {
        use std::io::Write;
        let mut child =
            self.client(database).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "SQL failed: {}\n{sql}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The catalogue's connection string for `user`.
    pub fn url(&self, user: &str, password: &str) -> String {
        format!("mysql://{user}:{password}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The read-only user's connection string.
    pub fn reader_url(&self) -> String {
        self.url(READER, READER_PASSWORD)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
