//! `prov serve`: the OpenLineage HTTP endpoint and the lineage API.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;

use anyhow::{Context, bail};

use crate::ctx::Ctx;
use crate::server::{self, LiveTokens, Settings};

/// Serve the OpenLineage HTTP API: POST /api/v1/lineage (and /batch) for any
/// OpenLineage client, GET /api/v1/lineage?nodeId= in Marquez's shape, audits,
/// raw events, /healthz, /readyz, /metrics and /openapi.yaml.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  prov token create --role write --tokens tokens.tsv --name pipelines\n  prov serve --tokens tokens.tsv\n  OPENLINEAGE_URL=http://127.0.0.1:5000 OPENLINEAGE_API_KEY=<token> prov run -- ..."
)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    addr: SocketAddr,

    /// Accept only bearer tokens listed (as hashes) in this file; see `prov token create`.
    /// The file is read again when it changes (within a second) or on SIGHUP:
    /// `prov token revoke` takes effect without a restart.
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,

    /// Listen beyond loopback without tokens (anyone who can connect may write).
    #[arg(long)]
    insecure_no_auth: bool,

    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    body_limit: usize,

    /// Largest body after gzip decompression, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    decompressed_limit: usize,

    /// Most events in one POST to /api/v1/lineage/batch (more is refused with 413).
    #[arg(long, default_value_t = 20_000)]
    batch_limit: usize,

    /// Seconds a client has to send a request's headers, and again its body;
    /// a slower one is cut off (headers) or answered 408 (body). A client
    /// that reads nothing of its answer for this long is cut off too.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    read_timeout: u64,

    /// Most connections open at once; more wait in the kernel's queue.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,

    /// MiB of event text (gzip counted as it may inflate) that ingest
    /// requests may hold at once; more wait. Parsing and storing take several
    /// times the text, so this bounds the server's memory. A request takes
    /// its share when the first bytes of its body arrive; until then its
    /// body waits in the kernel's buffers.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    memory_budget: u64,

    /// Seconds to let requests in flight finish after SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 10)]
    shutdown_grace: u64,
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let tokens = self
            .tokens
            .as_deref()
            .map(LiveTokens::load)
            .transpose()?
            .map(Arc::new);
        if tokens.is_none() && !self.addr.ip().is_loopback() && !self.insecure_no_auth {
            bail!(
                "refusing to listen on {} without --tokens: anyone who can reach it could write to the store \
                 (pass --tokens FILE, or --insecure-no-auth if that is really wanted)",
                self.addr
            );
        }
        let write_store = ctx.store()?;
        let read_store = ctx.store()?;
        let settings = Settings {
            body_limit: self.body_limit,
            decompressed_limit: self.decompressed_limit,
            batch_limit: self.batch_limit,
            read_timeout: Duration::from_secs(self.read_timeout),
            memory_budget_mib: self.memory_budget as usize,
            tokens: tokens.clone(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("start the async runtime")?;
        let (router, writer) = server::app(write_store, read_store, settings);
        let served = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(self.addr)
                .await
                .with_context(|| format!("listen on {}", self.addr))?;
            eprintln!(
                "prov serve: listening on http://{} (store {})",
                listener.local_addr()?,
                provenance_store::redact(ctx.store_location())
            );
            let limits = Limits {
                read_timeout: Duration::from_secs(self.read_timeout),
                max_connections: self.max_connections as usize,
                grace: Duration::from_secs(self.shutdown_grace),
            };
            // SIGHUP reads the tokens file again (it is also looked at, at
            // most once a second, as requests come); it does not stop the
            // server.
            if let Ok(mut hangup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            {
                tokio::spawn(async move {
                    while hangup.recv().await.is_some() {
                        match &tokens {
                            Some(t) => t.reload(),
                            None => eprintln!("prov serve: SIGHUP: no tokens file to read again"),
                        }
                    }
                });
            }
            serve(listener, router, limits).await;
            anyhow::Ok(())
        });
        // Drops the connections still open after the grace period, and with
        // them their hold on the writer.
        runtime.shutdown_timeout(Duration::from_secs(2));
        served?;
        // The writer stores what it was handed, then stops.
        writer.join();
        eprintln!("prov serve: stopped");
        Ok(ExitCode::SUCCESS)
    }
}

/// What keeps one client from holding the server.
struct Limits {
    read_timeout: Duration,
    max_connections: usize,
    grace: Duration,
}

/// Accepts connections until Ctrl-C or SIGTERM, each served by hyper with a
/// deadline for its headers and allowed to half-close; at most
/// `max_connections` at once. On the signal it stops accepting, lets the
/// requests in flight finish for `grace`, and returns: a client that stalls
/// cannot keep the server from stopping, and an event is acknowledged only
/// once stored, so an answer cut off is one the client will send again.
async fn serve(listener: tokio::net::TcpListener, router: axum::Router, limits: Limits) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut stop = std::pin::pin!(shutdown());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .half_close(true);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    eprintln!("prov serve: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        // A send buffer of modest size: the kernel reports a socket
        // writable again once a third of it has drained, and the write
        // deadline below counts those reports as progress. With the
        // kernel's own tuning (up to 4 MiB) a client reading a large answer
        // steadily but slowly made no reported progress for seconds on end.
        let _ =
            nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER);
        let stream = WriteDeadline {
            stream,
            timeout: limits.read_timeout,
            stalled: None,
        };
        let connection =
            graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection's end (a reset, a timeout) concerns that client only.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "prov serve: connections still open after {} s; stopping without them",
            limits.grace.as_secs()
        );
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Bytes asked for each connection's send buffer (the kernel doubles it).
const SEND_BUFFER: usize = 128 << 10;

/// A connection whose answers must be read: a write that makes no progress
/// for `timeout` fails, so a client that sends requests (pipelined, or for a
/// large answer) and never reads cannot hold its connection slot, whose
/// number is limited, for ever. Any progress restarts the clock.
struct WriteDeadline {
    stream: tokio::net::TcpStream,
    timeout: Duration,
    /// Armed when a write could not proceed; cleared when one does.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteDeadline {
    /// After a write that could not proceed: `Pending` until the deadline,
    /// then an error that ends the connection.
    fn wait<T>(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read none of its answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// `result` of a write: progress clears the deadline, none waits on it.
    fn progress<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending => self.wait(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl tokio::io::AsyncRead for WriteDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for WriteDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.progress(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.progress(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_flush(cx);
        this.progress(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_shutdown(cx);
        this.progress(result, cx)
    }
}
