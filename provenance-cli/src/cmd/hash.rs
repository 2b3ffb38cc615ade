//! `prov hash`: content digests of files and directories, through the hash cache.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use provenance_core::hash::{
    CacheError, EntryKind, HashCache, HashObserver, HashOptions, Hasher, PathDigest,
};
use provenance_store::SqliteHashCache;
use serde_json::json;

/// Print the sha-256 (and md5) of files; a directory gets a Merkle digest.
///
/// Text output is what `sha256sum -c` accepts (or `md5sum -c` with `--algo md5`;
/// with both algorithms, tagged lines that `cksum -c` accepts). A file whose
/// device, inode, size, mtime and ctime are unchanged since it was last hashed
/// is not read again: its digest comes from the hash cache.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  prov hash sample_R1.fastq.gz sample_R2.fastq.gz > SHA256SUMS && sha256sum -c SHA256SUMS\n  prov hash --algo sha256,md5 reads/*.fastq.gz\n  prov hash --format json GRCh38_bwa_index/"
)]
pub struct Args {
    /// Files or directories to hash.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Digests to compute, comma-separated: sha256, md5.
    #[arg(long, value_delimiter = ',', default_value = "sha256", value_enum)]
    algo: Vec<Algo>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Read and hash every file again, even if the cache says it is unchanged.
    #[arg(long)]
    rehash: bool,

    /// Neither read nor write the hash cache.
    #[arg(long)]
    no_cache: bool,

    /// The hash cache file [default: $PROV_HASH_CACHE if set and not empty,
    /// else $XDG_CACHE_HOME/prov/hash-cache.sqlite, else
    /// ~/.cache/prov/hash-cache.sqlite].
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,

    /// Files hashed at once [default: one per core].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    jobs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Algo {
    #[value(alias = "sha-256")]
    Sha256,
    Md5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// `<hex>  <path>` lines, as sha256sum prints them.
    Text,
    /// A JSON array, one object per path.
    Json,
}

impl Args {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let want_sha = self.algo.contains(&Algo::Sha256);
        let want_md5 = self.algo.contains(&Algo::Md5);
        let cache = self.open_cache();
        let progress =
            Progress::new(std::io::stdout().is_terminal() && std::io::stderr().is_terminal());
        let options = HashOptions {
            md5: want_md5,
            rehash: self.rehash,
            threads: self.jobs,
            ..HashOptions::default()
        };
        let mut hasher = Hasher::new(options).with_observer(&progress);
        if let Some(cache) = &cache {
            hasher = hasher.with_cache(cache as &dyn HashCache);
        }
        let results = hasher.hash_all(&self.paths);
        progress.finish();

        let mut out = std::io::stdout().lock();
        let mut failed = 0usize;
        let mut json_items = Vec::new();
        for (path, result) in self.paths.iter().zip(results) {
            let digest = match result {
                Ok(d) if want_md5 && !want_sha && d.kind == EntryKind::Directory => {
                    Err(anyhow::anyhow!(
                        "hash {}: md5 is not defined for directories; use --algo sha256",
                        path.display()
                    ))
                }
                Ok(d) => Ok(d),
                Err(e) => Err(anyhow::Error::new(e)),
            };
            match digest {
                Ok(d) => match self.format {
                    Format::Text => write_text(&mut out, &d, want_sha, want_md5)?,
                    Format::Json => json_items.push(to_json(&d)),
                },
                Err(e) => {
                    failed += 1;
                    eprintln!("prov: error: {e:#}");
                    if self.format == Format::Json {
                        json_items.push(
                            json!({"path": path.to_string_lossy(), "error": format!("{e:#}")}),
                        );
                    }
                }
            }
        }
        if self.format == Format::Json {
            super::write_json(&mut out, &json_items)?;
        }
        out.flush()?;
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::exit::INPUT)
        })
    }

    fn open_cache(&self) -> Option<SqliteHashCache> {
        if self.no_cache {
            return None;
        }
        let path = self
            .cache
            .clone()
            .or_else(super::hash_cache_from_env)
            .or_else(default_cache_path)?;
        match SqliteHashCache::open(&path).with_context(|| "the hash cache is off for this run") {
            Ok(cache) => Some(cache),
            Err(e) => {
                eprintln!("prov: warning: {e:#}");
                None
            }
        }
    }
}

/// `$XDG_CACHE_HOME/prov/hash-cache.sqlite`, else `~/.cache/prov/hash-cache.sqlite`.
pub fn default_cache_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    Some(base.join("prov").join("hash-cache.sqlite"))
}

/// One line per digest, escaped as GNU coreutils does for names holding a
/// backslash or a newline (the line then starts with a backslash). A name is
/// written as its bytes, as sha256sum writes it, so that `sha256sum -c`
/// finds a file whose name is not UTF-8.
fn write_text(out: &mut impl Write, d: &PathDigest, sha: bool, md5: bool) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = d.path.as_os_str().as_bytes();
    let escaped = bytes.iter().any(|b| matches!(b, b'\\' | b'\n' | b'\r'));
    let mut name = Vec::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' if escaped => name.extend_from_slice(b"\\\\"),
            b'\n' => name.extend_from_slice(b"\\n"),
            b'\r' => name.extend_from_slice(b"\\r"),
            b => name.push(b),
        }
    }
    let lead = if escaped { "\\" } else { "" };
    let mut line = |text: std::fmt::Arguments<'_>, tail: &str| -> std::io::Result<()> {
        out.write_fmt(text)?;
        out.write_all(&name)?;
        writeln!(out, "{tail}")
    };
    match (sha, md5, d.md5.as_deref()) {
        (true, true, Some(m)) => {
            line(format_args!("{lead}SHA256 ("), &format!(") = {}", d.sha256))?;
            line(format_args!("{lead}MD5 ("), &format!(") = {m}"))
        }
        (false, true, Some(m)) => line(format_args!("{lead}{m}  "), ""),
        // Directories carry no md5: their Merkle sha-256 stands alone.
        (_, _, _) => line(format_args!("{lead}{}  ", d.sha256), ""),
    }
}

fn to_json(d: &PathDigest) -> serde_json::Value {
    let facet = d.checksum_facet();
    let mut item = json!({
        // A name that is not UTF-8 shows U+FFFD (serde would refuse it).
        "path": d.path.to_string_lossy(),
        "kind": match d.kind { EntryKind::File => "file", EntryKind::Directory => "directory" },
        "size": d.size,
        "sha256": d.sha256,
        "cached": d.cached,
        "modifiedTime": facet.modified_time,
    });
    if let Some(target) = &d.target {
        item["target"] = json!(target);
    }
    if let Some(md5) = &d.md5 {
        item["md5"] = json!(md5);
    }
    if let Some(count) = d.file_count {
        item["fileCount"] = json!(count);
        item["merkle"] = json!(provenance_core::hash::MERKLE_SCHEME);
    }
    item
}

/// A progress bar on the terminal for large inputs; nothing otherwise.
struct Progress {
    enabled: bool,
    bar: OnceLock<ProgressBar>,
    warned: AtomicBool,
}

/// Below this many bytes a bar would only flicker.
const BAR_THRESHOLD: u64 = 256 << 20;

impl Progress {
    fn new(enabled: bool) -> Self {
        Progress {
            enabled,
            bar: OnceLock::new(),
            warned: AtomicBool::new(false),
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

impl HashObserver for Progress {
    fn started(&self, total: u64) {
        if self.enabled && total >= BAR_THRESHOLD {
            let bar = ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let _ = self.bar.set(bar);
        }
    }

    fn bytes_hashed(&self, n: u64) {
        if let Some(bar) = self.bar.get() {
            bar.inc(n);
        }
    }

    fn cache_failed(&self, error: &CacheError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            let message = super::with_causes(error);
            eprintln!("prov: warning: {message}; hashing goes on without the cache");
        }
    }
}
