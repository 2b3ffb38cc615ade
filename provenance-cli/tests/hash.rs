//! `prov hash`, run as a user would: output the coreutils checkers accept, and a
//! hash cache shared by several processes that never yields a wrong digest.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("prov-cli-hash-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn prov(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(args)
        .current_dir(dir)
        .env_remove("PROV_HASH_CACHE")
        .env("XDG_CACHE_HOME", dir.join("xdg"))
        .output()
        .expect("run prov")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "prov failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn check_with(tool: &str, args: &[&str], dir: &Path, sums: &str) {
    let file = dir.join(format!("{tool}.sums"));
    fs::write(&file, sums).unwrap();
    let out = Command::new(tool)
        .args(args)
        .arg(&file)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} -c rejected:\n{sums}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn output_is_accepted_by_the_coreutils_checkers() {
    let tmp = TempDir::new("checkers");
    let dir = &tmp.0;
    fs::write(dir.join("S1_R1.fastq"), b"@r1\nACGT\n+\nIIII\n").unwrap();
    fs::write(dir.join("odd\\name"), b"backslash").unwrap();
    fs::write(dir.join("empty"), b"").unwrap();
    let names = ["S1_R1.fastq", "odd\\name", "empty"];

    let sums = stdout(&prov(dir, &[&["hash"][..], &names].concat()));
    assert_eq!(sums.lines().count(), 3);
    check_with("sha256sum", &["-c"], dir, &sums);

    let sums = stdout(&prov(
        dir,
        &[&["hash", "--algo", "md5"][..], &names].concat(),
    ));
    check_with("md5sum", &["-c"], dir, &sums);

    let sums = stdout(&prov(
        dir,
        &[&["hash", "--algo", "sha256,md5"][..], &names].concat(),
    ));
    assert_eq!(sums.lines().count(), 6);
    check_with("cksum", &["-c"], dir, &sums);

    // A name that is not UTF-8 is written as its bytes, as sha256sum does.
    use std::os::unix::ffi::OsStrExt;
    let odd = std::ffi::OsStr::from_bytes(b"bad\xffname.txt");
    fs::write(dir.join(odd), b"latin-1").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prov"))
        .arg("hash")
        .arg(odd)
        .current_dir(dir)
        .env_remove("PROV_HASH_CACHE")
        .env("XDG_CACHE_HOME", dir.join("xdg"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let theirs = Command::new("sha256sum")
        .arg(odd)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.stdout, theirs.stdout);
}

#[test]
fn bad_paths_are_reported_and_the_rest_still_printed() {
    let tmp = TempDir::new("bad");
    let dir = &tmp.0;
    fs::write(dir.join("ok.vcf"), b"##fileformat=VCFv4.2\n").unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(dir.join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    let out = prov(dir, &["hash", "missing.bam", "ok.vcf", "fifo"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("prov: error: read missing.bam: No such file"),
        "{stderr}"
    );
    assert!(stderr.contains("fifo: it is a FIFO"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("  ok.vcf\n"));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let tmp = TempDir::new("pipe");
    let dir = &tmp.0;
    let names: Vec<String> = (0..2000).map(|i| format!("f{i}")).collect();
    for n in &names {
        fs::write(dir.join(n), n.as_bytes()).unwrap();
    }
    // Text, and JSON (written through serde_json).
    for format in ["text", "json"] {
        let script = format!(
            "'{}' hash --no-cache --format {format} f* | head -1; echo \"${{PIPESTATUS[0]}}\"",
            env!("CARGO_BIN_EXE_prov")
        );
        let out = Command::new("bash")
            .args(["-c", &script])
            .current_dir(dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(text.lines().last(), Some("0"), "{format}: {text}\n{stderr}");
        assert!(!stderr.contains("error"), "{format}: {stderr}");
    }
}

fn json_of(out: &Output) -> Vec<serde_json::Value> {
    serde_json::from_str(&stdout(out)).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    provenance_core::hex(&Sha256::digest(bytes))
}

/// Rewrites `path` with `bytes` (same size) and puts its old mtime back, the
/// hardest change for a cache to notice.
fn rewrite_keeping_mtime(path: &Path, bytes: &[u8]) {
    let mtime = fs::metadata(path).unwrap().modified().unwrap();
    fs::write(path, bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

fn content(file: usize, version: u64) -> Vec<u8> {
    let mut x = (file as u64 + 1) * 0x9e37_79b9 + version * 0x85eb_ca6b + 1;
    (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn processes_sharing_one_cache_never_see_a_wrong_digest() {
    let tmp = TempDir::new("shared");
    let dir = &tmp.0;
    let files: Vec<String> = (0..16).map(|i| format!("sample{i}.bam")).collect();
    let mut versions: HashMap<String, HashSet<String>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        let bytes = content(i, 0);
        fs::write(dir.join(f), &bytes).unwrap();
        versions
            .entry(f.clone())
            .or_default()
            .insert(sha256_hex(&bytes));
    }
    let cache = dir.join("shared-cache.sqlite");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec![
            "hash".to_owned(),
            "--format".into(),
            "json".into(),
            "--cache".into(),
        ];
        a.push(cache.to_str().unwrap().to_owned());
        a.extend(extra.iter().map(|s| s.to_string()));
        a.extend(files.iter().cloned());
        a
    };
    let run = |extra: &[&str]| -> Output {
        let a = args(extra);
        prov(dir, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let truth = |name: &str| sha256_hex(&fs::read(dir.join(name)).unwrap());

    // Files older than the racy window are cached by one process, served to the next.
    std::thread::sleep(Duration::from_millis(2100));
    assert!(json_of(&run(&[])).iter().all(|d| d["cached"] == false));
    let second = json_of(&run(&[]));
    assert!(second.iter().all(|d| d["cached"] == true), "{second:?}");

    // Same-size rewrites with the old mtime restored: never served from the cache.
    for (i, f) in files.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let bytes = content(i, 1);
        rewrite_keeping_mtime(&dir.join(f), &bytes);
        versions.get_mut(f).unwrap().insert(sha256_hex(&bytes));
    }
    for d in json_of(&run(&[])) {
        let name = d["path"].as_str().unwrap();
        assert_eq!(d["sha256"], truth(name), "{name}");
        let index: usize = name
            .trim_start_matches("sample")
            .trim_end_matches(".bam")
            .parse()
            .unwrap();
        assert_eq!(d["cached"], index % 2 == 1, "{name}");
    }

    // Several processes hash while a writer keeps rewriting: every digest they
    // print is one the file really had; a file caught mid-write is an error.
    // fs::write truncates before it writes, so a file is briefly empty: a
    // reader may truly see that state too.
    for known in versions.values_mut() {
        known.insert(sha256_hex(b""));
    }
    let stop = AtomicBool::new(false);
    let written = std::sync::Mutex::new(versions);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let started = Instant::now();
            let mut version = 2;
            while started.elapsed() < Duration::from_secs(3) {
                for (i, f) in files
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| (i + version as usize).is_multiple_of(3))
                {
                    let bytes = content(i, version);
                    written
                        .lock()
                        .unwrap()
                        .get_mut(f)
                        .unwrap()
                        .insert(sha256_hex(&bytes));
                    rewrite_keeping_mtime(&dir.join(f), &bytes);
                }
                version += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            stop.store(true, Ordering::SeqCst);
        });
        for _ in 0..3 {
            scope.spawn(|| {
                let mut checked = 0;
                while !stop.load(Ordering::SeqCst) {
                    let out = run(&[]);
                    let items: Vec<serde_json::Value> =
                        serde_json::from_slice(&out.stdout).unwrap();
                    for d in items {
                        let name = d["path"].as_str().unwrap();
                        if let Some(sha) = d["sha256"].as_str() {
                            // The writer records a version before writing it.
                            let known = written.lock().unwrap()[name].contains(sha);
                            assert!(known, "{name}: {sha} is no content the file ever had");
                            checked += 1;
                        } else {
                            assert!(
                                d["error"]
                                    .as_str()
                                    .unwrap()
                                    .contains("changed while it was hashed")
                                    || d["error"].as_str().unwrap().contains("read "),
                                "{d}"
                            );
                        }
                    }
                }
                assert!(checked > 0);
            });
        }
    });

    // Once the files are quiet and old enough to cache, every process agrees
    // with the bytes on disk, first hashing and then from the cache.
    std::thread::sleep(Duration::from_millis(2100));
    for pass in 0..2 {
        for d in json_of(&run(&[])) {
            let name = d["path"].as_str().unwrap();
            assert_eq!(d["sha256"], truth(name), "pass {pass}: {name}");
        }
    }
}

#[test]
fn an_empty_prov_hash_cache_counts_as_unset() {
    let dir = TempDir::new("empty-env");
    fs::write(dir.0.join("a.txt"), b"a\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["hash", "a.txt"])
        .current_dir(&dir.0)
        .env("PROV_HASH_CACHE", "")
        .env("XDG_CACHE_HOME", dir.0.join("xdg"))
        .output()
        .unwrap();
    assert!(stdout(&out).starts_with(&sha256_hex(b"a\n")));
    assert!(
        dir.0.join("xdg/prov/hash-cache.sqlite").exists(),
        "the default cache is used"
    );
}

/// A cache another program holds locked costs `prov run` one short wait and
/// a warning, not a wait per input.
#[test]
fn prov_run_warns_once_and_goes_on_when_the_hash_cache_is_locked() {
    let dir = TempDir::new("locked");
    let cache = dir.0.join("cache.sqlite");
    let inputs: Vec<String> = (0..6)
        .map(|i| {
            let p = dir.0.join(format!("in{i}.fq"));
            fs::write(&p, format!("@r{i}\nACGT\n+\nIIII\n")).unwrap();
            p.display().to_string()
        })
        .collect();
    let with_cache = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_prov"))
            .args(args)
            .current_dir(&dir.0)
            .env("PROV_HASH_CACHE", &cache)
            .env("PROV_STORE", dir.0.join("prov.db"))
            .env_remove("OPENLINEAGE_URL")
            .env_remove("OPENLINEAGE_CONFIG")
            .output()
            .unwrap()
    };
    stdout(&with_cache(&["hash", "--no-cache", &inputs[0]]));
    // Create the cache, then hold its write lock from this process.
    drop(make_cache(&cache));
    let locker = hold_write_lock(&cache);
    std::thread::sleep(Duration::from_millis(100));
    let mut args = vec!["run", "--job", "j"];
    for input in &inputs {
        args.extend(["--input", input.as_str()]);
    }
    args.extend(["--", "true"]);
    let started = Instant::now();
    let out = with_cache(&args);
    let took = started.elapsed();
    drop(locker);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("hashing goes on without the cache").count(),
        1,
        "{stderr}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}: {stderr}");
}

/// Makes the hash cache at `path` by hashing a file through it.
fn make_cache(path: &Path) -> Output {
    let dir = path.parent().unwrap();
    fs::write(dir.join("seed.txt"), b"seed").unwrap();
    Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["hash", "--cache"])
        .arg(path)
        .arg("seed.txt")
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `sqlite3`-like: a child that holds a write transaction open on `path`
/// until it is killed.
fn hold_write_lock(path: &Path) -> ChildGuard {
    let child = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(120)",
        ])
        .arg(path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

struct ChildGuard(std::process::Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
