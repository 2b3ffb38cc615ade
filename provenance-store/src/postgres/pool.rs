//! Connections to PostgreSQL: reading the store URL (with its `sslmode`), TLS
//! through native-tls (the system's OpenSSL), and a small pool of clients,
//! each with its own cache of prepared statements.
//!
//! `sslmode` follows libpq: `disable` never encrypts; `prefer` (the default)
//! encrypts when the server offers it; `require` always encrypts; none of
//! these three checks the server's certificate. `verify-ca` checks the
//! certificate against the system's roots (plus `sslrootcert=FILE`), and
//! `verify-full` also checks that it names the host.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::config::SslMode;
use postgres::{Client, Config, NoTls, Statement};
use postgres_native_tls::MakeTlsConnector;

/// The most connections one store opens.
const MAX_CONNECTIONS: usize = 8;

/// A session idle this long is checked with a round trip before it is lent:
/// the server may have ended it meanwhile (a restart, a failover, an
/// `idle_session_timeout`, a pooler or firewall dropping idle connections),
/// and a step that ran for an hour must still record its end.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long that check may take before the session counts as dead.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A store URL that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UrlError {
    #[error("sslmode={0:?} is not one of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("read sslrootcert {path}")]
    RootCert {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("set up TLS")]
    Tls(#[source] native_tls::Error),
    #[error("read the URL")]
    Config(#[source] postgres::Error),
}

/// How to reach the server: the driver's configuration and the TLS connector.
pub(crate) struct Target {
    config: Config,
    tls: Option<MakeTlsConnector>,
}

impl Target {
    /// Reads a `postgres://` URL. `sslmode` and `sslrootcert` are read here;
    /// every other parameter goes to the driver as it is.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut passed = Vec::new();
        let mut mode = "prefer".to_owned();
        let mut root_cert = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => mode = percent_decode(value),
                "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(value))),
                _ => passed.push(pair),
            }
        }
        let url = if passed.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", passed.join("&"))
        };
        let mut config: Config = url.parse().map_err(UrlError::Config)?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("prov");
        }
        let (ssl, verify_ca, verify_host) = match mode.as_str() {
            "disable" => (SslMode::Disable, false, false),
            "prefer" => (SslMode::Prefer, false, false),
            "require" => (SslMode::Require, false, false),
            "verify-ca" => (SslMode::Require, true, false),
            "verify-full" => (SslMode::Require, true, true),
            _ => return Err(UrlError::SslMode(mode)),
        };
        config.ssl_mode(ssl);
        let tls = if ssl == SslMode::Disable {
            None
        } else {
            let mut builder = native_tls::TlsConnector::builder();
            builder
                .danger_accept_invalid_certs(!verify_ca)
                .danger_accept_invalid_hostnames(!verify_host);
            if let Some(path) = root_cert {
                let pem = std::fs::read(&path).map_err(|e| UrlError::RootCert {
                    path: path.clone(),
                    source: e.into(),
                })?;
                let cert =
                    native_tls::Certificate::from_pem(&pem).map_err(|e| UrlError::RootCert {
                        path: path.clone(),
                        source: e.into(),
                    })?;
                builder.add_root_certificate(cert);
            }
            Some(MakeTlsConnector::new(
                builder.build().map_err(UrlError::Tls)?,
            ))
        };
        Ok(Target { config, tls })
    }

    /// Opens a new session, with writers' waits bounded (see `LOCK_TIMEOUT`).
    fn connect(&self) -> Result<Client, postgres::Error> {
        let mut client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone())?,
            None => self.config.connect(NoTls)?,
        };
        client.batch_execute(&format!(
            "SET lock_timeout = {}",
            super::LOCK_TIMEOUT.as_millis()
        ))?;
        Ok(client)
    }
}

/// Decodes `%XX` escapes (other bytes are kept).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One session and the statements prepared on it.
pub(crate) struct Conn {
    pub client: Client,
    pub statements: HashMap<&'static str, Statement>,
}

/// Prepares `sql` once per session.
pub(crate) fn prepared(
    statements: &mut HashMap<&'static str, Statement>,
    client: &mut impl postgres::GenericClient,
    sql: &'static str,
) -> Result<Statement, postgres::Error> {
    if let Some(s) = statements.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql)?;
    statements.insert(sql, s.clone());
    Ok(s)
}

#[derive(Default)]
struct Slots {
    /// Sessions not on loan, each with when it came back.
    idle: Vec<(Conn, Instant)>,
    open: usize,
}

/// Up to [`MAX_CONNECTIONS`] sessions, opened when first needed.
pub(crate) struct Pool {
    target: Target,
    slots: Mutex<Slots>,
    freed: Condvar,
}

impl Pool {
    pub fn new(target: Target) -> Pool {
        Pool {
            target,
            slots: Mutex::new(Slots::default()),
            freed: Condvar::new(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // The slots are a list and a count, consistent after every statement.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle session, a new one, or the next one returned.
    pub fn get(&self) -> Result<Pooled<'_>, postgres::Error> {
        let mut slots = self.slots();
        loop {
            if let Some((mut conn, since)) = slots.idle.pop() {
                if since.elapsed() >= CHECK_AFTER_IDLE {
                    drop(slots);
                    let alive =
                        !conn.client.is_closed() && conn.client.is_valid(CHECK_TIMEOUT).is_ok();
                    slots = self.slots();
                    if !alive {
                        // Ended by the server: close it and take another.
                        slots.open -= 1;
                        drop(slots);
                        drop(conn);
                        slots = self.slots();
                        continue;
                    }
                }
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if slots.open < MAX_CONNECTIONS {
                slots.open += 1;
                drop(slots);
                return match self.target.connect() {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            statements: HashMap::new(),
                        }),
                    }),
                    Err(e) => {
                        self.slots().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            slots = self.freed.wait(slots).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing a session blocks on the driver's own runtime, which tokio
        // forbids on a thread that drives async tasks (a server may drop its
        // store there): close them on a thread of their own.
        let idle: Vec<Conn> = std::mem::take(&mut self.slots().idle)
            .into_iter()
            .map(|(conn, _)| conn)
            .collect();
        std::thread::scope(|s| {
            let _ = std::thread::Builder::new().spawn_scoped(s, move || drop(idle));
        });
    }
}

/// A session on loan; it goes back to the pool when dropped, unless broken.
pub(crate) struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if conn.client.is_closed() {
            self.pool.slots().open -= 1;
            drop(conn);
        } else {
            self.pool.slots().idle.push((conn, Instant::now()));
        }
        self.pool.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: &str) {
        let got = match Target::parse(url) {
            Ok(t) => format!(
                "{:?} tls={} host={:?} db={:?} options={:?}",
                t.config.get_ssl_mode(),
                t.tls.is_some(),
                t.config.get_hosts(),
                t.config.get_dbname(),
                t.config.get_options()
            ),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{url}");
    }

    #[test]
    fn urls_are_read_with_their_sslmode() {
        check(
            "postgres://u@h/db",
            r#"Prefer tls=true host=[Tcp("h")] db=Some("db") options=None"#,
        );
        check(
            "postgresql://u@h/db?sslmode=disable",
            r#"Disable tls=false host=[Tcp("h")] db=Some("db") options=None"#,
        );
        check(
            "postgres://u@h/db?sslmode=verify-full&options=-csearch_path%3Dx",
            r#"Require tls=true host=[Tcp("h")] db=Some("db") options=Some("-csearch_path=x")"#,
        );
        check(
            "postgres://u@h/db?sslmode=sometimes",
            r#"error: sslmode="sometimes" is not one of disable, prefer, require, verify-ca, verify-full"#,
        );
        check(
            "postgres://u@h/db?sslrootcert=/nonexistent/ca.pem",
            "error: read sslrootcert /nonexistent/ca.pem",
        );
        check("postgres://u@h/db?colour=blue", "error: read the URL");
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("%2Fetc%2fca.pem"), "/etc/ca.pem");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%zzb"), "a%zzb");
    }
}
