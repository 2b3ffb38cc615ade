//! Bearer tokens with roles. The token file keeps only each token's sha-256,
//! its role and an optional name; tokens are compared in constant time.

use std::io::Write;
use std::path::Path;

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
    /// Reads `path`: lines of `<sha256 hex>\t<role>\t<name>`; `#` starts a comment.
    pub fn load(path: &Path) -> anyhow::Result<TokenFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the tokens file {}", path.display()))?;
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
        if entries.is_empty() {
            bail!("the tokens file {} holds no tokens", path.display());
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
    // A file edited by hand may not end its last line.
    let unended = std::fs::read(path).is_ok_and(|t| t.last().is_some_and(|b| *b != b'\n'));
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| {
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
