//! Bearer tokens with roles. The token file keeps only each token's sha-256,
//! its role and an optional name; tokens are compared in constant time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Queries only.
    Read,
    /// Ingest, and queries.
    Write,
}

impl Role {
    /// Whether this role may do what `needed` requires.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Write || needed == Role::Read
    }

    fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }
}

/// The tokens a server accepts.
pub struct TokenFile {
    entries: Vec<([u8; 32], Role)>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenFile({} tokens)", self.entries.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal without an early exit, so timing tells nothing of where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TokenFile {
    /// Reads `path`: lines of `<sha256 hex>\t<role>\t<name>`; `#` starts a
    /// comment. A file with no token is an error (a server started on it
    /// would refuse everyone).
    pub fn load(path: &Path) -> anyhow::Result<TokenFile> {
        let file = TokenFile::read(path)?;
        if file.entries.is_empty() {
            bail!("the tokens file {} holds no tokens", path.display());
        }
        Ok(file)
    }

    /// Reads `path`, which may hold no token.
    fn read(path: &Path) -> anyhow::Result<TokenFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the tokens file {}", path.display()))?;
        TokenFile::parse(&text, path)
    }

    /// The tokens in `text`, read from `path` (named in errors).
    fn parse(text: &str, path: &Path) -> anyhow::Result<TokenFile> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split('\t');
            let (Some(hex), Some(role)) = (fields.next(), fields.next()) else {
                bail!(
                    "{}:{}: expected <sha256>\\t<role>\\t<name>",
                    path.display(),
                    n + 1
                );
            };
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
                .collect::<Result<Vec<u8>, _>>();
            let hash: [u8; 32] = match bytes.ok().and_then(|b| b.try_into().ok()) {
                Some(h) => h,
                None => bail!(
                    "{}:{}: the token hash is not 64 hexadecimal digits",
                    path.display(),
                    n + 1
                ),
            };
            let role = match role {
                "read" => Role::Read,
                "write" => Role::Write,
                other => bail!(
                    "{}:{}: role {other:?} is not read or write",
                    path.display(),
                    n + 1
                ),
            };
            entries.push((hash, role));
        }
        Ok(TokenFile { entries })
    }

    /// The role of `token`, if it is one of ours.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        let presented = digest(token);
        let mut found = None;
        for (hash, role) in &self.entries {
            if constant_time_eq(hash, &presented) {
                found = Some(*role);
            }
        }
        found
    }
}

/// What identifies one state of the tokens file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    /// Inode, mode, owner and group: a file made readable again is read.
    #[cfg(unix)]
    inode: (u64, u32, u32, u32),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: (meta.ino(), meta.mode(), meta.uid(), meta.gid()),
    })
}

/// The tokens a running server accepts: the tokens file, read again when it
/// changes (looked at most once per [`LiveTokens::RECHECK`], and at once on
/// [`LiveTokens::reload`]), so that a token removed from the file (`prov token
/// revoke`) stops working without a restart; a file left with no token, or
/// gone or unreadable, refuses everyone. A file whose lines cannot be read
/// (one being edited by hand, a line not yet whole) keeps the tokens read
/// before, with a warning.
pub struct LiveTokens {
    path: PathBuf,
    current: RwLock<TokenFile>,
    /// The file's state when last read (or found unreadable), and when it
    /// was last looked at.
    seen: Mutex<(Option<Stamp>, Instant)>,
}

impl std::fmt::Debug for LiveTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveTokens({})", self.path.display())
    }
}

impl LiveTokens {
    /// How often a request may look at the file.
    pub const RECHECK: Duration = Duration::from_secs(1);

    /// Reads the file, which must hold valid tokens.
    pub fn load(path: &Path) -> anyhow::Result<LiveTokens> {
        let before = stamp(path);
        let file = TokenFile::load(path)?;
        Ok(LiveTokens {
            path: path.to_path_buf(),
            current: RwLock::new(file),
            seen: Mutex::new((before, Instant::now())),
        })
    }

    /// The role of `token` under the file as it is now.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        self.refresh(false);
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .role_of(token)
    }

    /// Reads the file again now (on SIGHUP, say).
    pub fn reload(&self) {
        self.refresh(true);
    }

    fn refresh(&self, now: bool) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !now && seen.1.elapsed() < Self::RECHECK {
            return;
        }
        seen.1 = Instant::now();
        let current = stamp(&self.path);
        // On request (SIGHUP) the file is read whatever its stamp says.
        if current == seen.0 && !now {
            return;
        }
        seen.0 = current;
        let replace = |file: TokenFile| {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = file;
        };
        match std::fs::read_to_string(&self.path) {
            // Gone or unreadable: nobody is let in (the tokens read before
            // may be the ones being revoked).
            Err(e) => {
                eprintln!(
                    "prov serve: warning: cannot read the tokens file {} ({e}); refusing every token until it can be read",
                    self.path.display()
                );
                replace(TokenFile {
                    entries: Vec::new(),
                });
            }
            Ok(text) => match TokenFile::parse(&text, &self.path) {
                Ok(file) => {
                    eprintln!(
                        "prov serve: read the tokens file {} again: {} tokens",
                        self.path.display(),
                        file.entries.len()
                    );
                    replace(file);
                }
                // A line being written by hand: wait for the whole of it.
                Err(e) => eprintln!("prov serve: warning: keeping the tokens read before: {e:#}"),
            },
        }
    }
}

/// The tokens in `path` (hash prefix, role, name), for `prov token list`.
pub fn list(path: &Path) -> anyhow::Result<Vec<(String, Role, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the tokens file {}", path.display()))?;
    TokenFile::read(path)?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut fields = line.split('\t');
            let hash = fields.next().unwrap_or("");
            let role = if fields.next() == Some("write") {
                Role::Write
            } else {
                Role::Read
            };
            let name = fields.next().unwrap_or("").to_owned();
            (hash.get(..12).unwrap_or(hash).to_owned(), role, name)
        })
        .collect())
}

/// Removes from `path` the tokens that `matches` (given the line's hash and
/// name) selects, under the lock `create` takes too: a new file with the
/// same owner, group and mode renamed over it, or where that cannot be done
/// the same file rewritten in place; returns how many were removed.
/// Comments stay.
pub fn revoke(path: &Path, matches: impl Fn(&str, &str) -> bool) -> anyhow::Result<usize> {
    // A link is followed: the file it names is the one rewritten.
    let path = &std::fs::canonicalize(path)
        .with_context(|| format!("open the tokens file {}", path.display()))?;
    let (locked, original) = lock(path, false)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the tokens file {}", path.display()))?;
    TokenFile::parse(&text, path)?;
    let mut kept = String::with_capacity(text.len());
    let mut removed = 0;
    for line in text.lines() {
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            let mut fields = trimmed.split('\t');
            let hash = fields.next().unwrap_or("");
            let name = fields.nth(1).unwrap_or("");
            if matches(hash, name) {
                removed += 1;
                continue;
            }
        }
        kept.push_str(line);
        kept.push('\n');
    }
    if removed == 0 {
        return Ok(0);
    }
    let context = || format!("rewrite the tokens file {}", path.display());
    // The whole new file, then renamed over the old, so that a server never
    // reads half of it; with the old one's owner, group and mode, so that a
    // server running as another user still can. Its name is new and cannot
    // be guessed, and it is created only if nothing is there (not through a
    // link someone placed in the folder).
    let file_name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let partial = path.with_file_name(format!(
        ".{file_name}.prov-partial-{}",
        provenance_core::RunId::new_v7()
    ));
    let renamed = (|| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&partial)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let mine = f.metadata()?;
            if (mine.uid(), mine.gid()) != (original.uid(), original.gid()) {
                std::os::unix::fs::fchown(&f, Some(original.uid()), Some(original.gid()))?;
            }
            f.set_permissions(original.permissions())?;
        }
        f.write_all(kept.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&partial, path)
    })();
    if renamed.is_err() {
        // Not possible here (a folder this user may not write in, a file of
        // another user's it may not give away, a file mounted alone): the
        // file is rewritten in place, the kept lines first and the rest cut
        // after, so that a server reading meanwhile sees every kept token.
        let _ = std::fs::remove_file(&partial);
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| {
                #[cfg(unix)]
                std::os::unix::fs::FileExt::write_all_at(&f, kept.as_bytes(), 0)?;
                f.set_len(kept.len() as u64)?;
                f.sync_all()
            })
            .with_context(context)?;
    }
    drop(locked);
    Ok(removed)
}

/// Opens the tokens file at `path` (creating it, mode 600, if `create`) and
/// locks it for this process alone, so that a `create` and a `revoke` run at
/// once do not lose each other's change; returns it and what it was when
/// locked. A file renamed over it meanwhile (a revoke) is locked anew.
fn lock(path: &Path, create: bool) -> anyhow::Result<(std::fs::File, std::fs::Metadata)> {
    loop {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).append(true).create(create);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(path)
            .with_context(|| format!("open the tokens file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("lock the tokens file {}", path.display()))?;
        let held = file.metadata()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata(path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {}
                _ => continue,
            }
        }
        return Ok((file, held));
    }
}

/// The hash of `token` as the tokens file keeps it.
pub fn hash_of(token: &str) -> String {
    provenance_core::hex(&digest(token))
}

/// Makes a new random token, appends its hash to `path`, and returns it.
pub fn create(path: &Path, role: Role, name: Option<&str>) -> anyhow::Result<String> {
    let mut random = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .context("read random bytes for the token")?;
    let token = format!("prov_{}", provenance_core::hex(&random));
    let line = format!(
        "{}\t{}\t{}\n",
        provenance_core::hex(&digest(&token)),
        role.name(),
        name.unwrap_or("").replace(['\t', '\n'], " ")
    );
    let (file, _) = lock(path, true)?;
    // A file edited by hand may not end its last line.
    let unended = std::fs::read(path).is_ok_and(|t| t.last().is_some_and(|b| *b != b'\n'));
    Ok::<_, std::io::Error>(file)
        .and_then(|mut f: std::fs::File| {
            let mut text = line.into_bytes();
            if unended {
                text.insert(0, b'\n');
            }
            f.write_all(&text)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if f.metadata()?.permissions().mode() & 0o077 != 0 {
                    eprintln!(
                        "prov: warning: the tokens file {} can be read by other users; `chmod 600` it",
                        path.display()
                    );
                }
            }
            Ok(())
        })
        .with_context(|| format!("append to the tokens file {}", path.display()))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_added_to_a_file_whose_last_line_is_unended_still_works() {
        let path = std::env::temp_dir().join(format!("prov-tokens-unended-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let first = create(&path, Role::Read, Some("ops")).unwrap();
        // Edited by hand: the last line loses its line break.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.trim_end()).unwrap();
        let second = create(&path, Role::Write, Some("ci")).unwrap();
        let tokens = TokenFile::load(&path).unwrap();
        assert_eq!(tokens.role_of(&first), Some(Role::Read));
        assert_eq!(tokens.role_of(&second), Some(Role::Write));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_revoked_token_stops_working_in_a_running_server_without_a_restart() {
        let path = std::env::temp_dir().join(format!("prov-tokens-live-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let ops = create(&path, Role::Write, Some("ops")).unwrap();
        let ci = create(&path, Role::Read, Some("ci")).unwrap();
        let live = LiveTokens::load(&path).unwrap();
        assert_eq!(live.role_of(&ops), Some(Role::Write));
        assert_eq!(revoke(&path, |_, name| name == "ops").unwrap(), 1);
        live.reload();
        assert_eq!(live.role_of(&ops), None, "revoked");
        assert_eq!(live.role_of(&ci), Some(Role::Read), "the others stay");
        assert_eq!(
            list(&path).unwrap(),
            [(hash_of(&ci)[..12].to_owned(), Role::Read, "ci".to_owned())]
        );
        // A line being written (not valid yet) keeps the tokens read before.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}3f2a\tre")).unwrap();
        live.reload();
        assert_eq!(live.role_of(&ci), Some(Role::Read));
        std::fs::write(&path, &text).unwrap();
        // Revoking by the token's hash, as `list` prints its start.
        let new = create(&path, Role::Read, None).unwrap();
        let prefix = hash_of(&new)[..12].to_owned();
        assert_eq!(
            revoke(&path, |hash, _| hash.starts_with(&prefix)).unwrap(),
            1
        );
        live.reload();
        assert_eq!(live.role_of(&new), None);
        // The last token revoked: nobody is let in.
        assert_eq!(revoke(&path, |_, _| true).unwrap(), 1);
        live.reload();
        assert_eq!(live.role_of(&ci), None);
        // Nor when the file is gone.
        let again = create(&path, Role::Read, None).unwrap();
        live.reload();
        assert_eq!(live.role_of(&again), Some(Role::Read));
        std::fs::remove_file(&path).unwrap();
        live.reload();
        assert_eq!(live.role_of(&again), None);
    }

    #[test]
    fn revoking_through_a_link_rewrites_the_file_it_names() {
        let dir = std::env::temp_dir().join(format!("prov-tokens-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("tokens.tsv");
        let link = dir.join("link.tsv");
        let gone = create(&real, Role::Write, Some("gone")).unwrap();
        let kept = create(&real, Role::Read, Some("kept")).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let live = LiveTokens::load(&real).unwrap();
        assert_eq!(revoke(&link, |_, name| name == "gone").unwrap(), 1);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        live.reload();
        assert_eq!(live.role_of(&gone), None);
        assert_eq!(live.role_of(&kept), Some(Role::Read));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Revoked by root for a server running as another user: the file keeps
    /// its owner, group and mode, so that server can still read it.
    #[test]
    fn a_revoked_file_keeps_its_owner_group_and_mode() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let path = std::env::temp_dir().join(format!("prov-tokens-owner-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        create(&path, Role::Write, Some("gone")).unwrap();
        create(&path, Role::Read, Some("kept")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        if std::os::unix::fs::chown(&path, Some(65534), Some(65534)).is_err() {
            eprintln!("skipped: only root can give the file to another user");
            std::fs::remove_file(&path).unwrap();
            return;
        }
        assert_eq!(revoke(&path, |_, name| name == "gone").unwrap(), 1);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
        assert_eq!(meta.mode() & 0o777, 0o640);
        assert_eq!(list(&path).unwrap().len(), 1);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn tokens_created_while_others_are_revoked_are_all_kept() {
        let path = std::env::temp_dir().join(format!("prov-tokens-race-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        for i in 0..40 {
            create(&path, Role::Read, Some(&format!("old{i}"))).unwrap();
        }
        let created = std::thread::scope(|s| {
            let maker = s.spawn(|| {
                (0..40)
                    .map(|i| create(&path, Role::Read, Some(&format!("new{i}"))).unwrap())
                    .collect::<Vec<_>>()
            });
            // Each revoke rewrites the file while tokens are being added.
            for i in 0..40 {
                let name = format!("old{i}");
                assert_eq!(revoke(&path, |_, n| n == name).unwrap(), 1);
            }
            maker.join().unwrap()
        });
        let tokens = TokenFile::load(&path).unwrap();
        for token in &created {
            assert_eq!(
                tokens.role_of(token),
                Some(Role::Read),
                "a created token was lost"
            );
        }
        assert_eq!(tokens.entries.len(), 40);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn created_tokens_are_found_with_their_role_and_others_are_not() {
        let path = std::env::temp_dir().join(format!("prov-tokens-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let writer = create(&path, Role::Write, Some("pipelines")).unwrap();
        let reader = create(&path, Role::Read, None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&writer) && !text.contains(&reader),
            "only hashes are kept"
        );
        let tokens = TokenFile::load(&path).unwrap();
        assert_eq!(tokens.role_of(&writer), Some(Role::Write));
        assert_eq!(tokens.role_of(&reader), Some(Role::Read));
        assert_eq!(tokens.role_of("prov_guess"), None);
        assert!(Role::Write.allows(Role::Read) && !Role::Read.allows(Role::Write));
        std::fs::remove_file(&path).unwrap();
    }
}
