//! `prov serve`: the OpenLineage HTTP endpoint and the lineage API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::ctx::Ctx;
use crate::server::{self, Settings, TokenFile};

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
}

impl Args {
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<ExitCode> {
        let tokens = self.tokens.as_deref().map(TokenFile::load).transpose()?;
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
            tokens,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("start the async runtime")?;
        let (router, writer) = server::app(write_store, read_store, settings);
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(self.addr)
                .await
                .with_context(|| format!("listen on {}", self.addr))?;
            eprintln!(
                "prov serve: listening on http://{} (store {})",
                listener.local_addr()?,
                provenance_store::redact(ctx.store_location())
            );
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown())
                .await
                .context("serve HTTP")
        })?;
        // Every request finished; the writer stores what it was handed, then stops.
        writer.join();
        eprintln!("prov serve: stopped");
        Ok(ExitCode::SUCCESS)
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
