//! Digests known on this machine, without asking a registry: the image the
//! local runtime holds (`docker`/`podman image inspect`, its `RepoDigests`),
//! the Apptainer/Singularity image file this process runs inside (the sha-256
//! of the SIF file named by `APPTAINER_CONTAINER` or `SINGULARITY_CONTAINER`),
//! and the AWS ECS/Batch task metadata (`ECS_CONTAINER_METADATA_URI_V4`,
//! `ImageID`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::oci::ImageReference;

/// The variables Apptainer and Singularity set inside a container to the
/// image it runs, in the order they are read.
pub const CONTAINER_FILE_VARS: [&str; 2] = ["APPTAINER_CONTAINER", "SINGULARITY_CONTAINER"];

/// The variable ECS (and AWS Batch on ECS) sets to the task metadata endpoint.
pub const ECS_METADATA_VAR: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// The image file this process runs inside, from `env`: the variable's name
/// and the path, when it names a regular file (not a sandbox folder).
pub fn container_image_file(env: &[(String, String)]) -> Option<(&'static str, String)> {
    CONTAINER_FILE_VARS.iter().find_map(|var| {
        let (_, path) = env.iter().find(|(k, v)| k == var && !v.is_empty())?;
        Path::new(path).is_file().then(|| (*var, path.clone()))
    })
}

/// `sha256:<hex>` of the file at `path` (an image file).
pub fn file_digest(path: &Path) -> Result<String, String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| format!("read {}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", crate::hex(&hasher.finalize())))
}

/// The digest under which the local runtime (`docker` or `podman`) holds
/// `reference`: the entry of `RepoDigests` for its repository.
pub fn runtime_digest(
    program: &str,
    reference: &ImageReference,
    image: &str,
    timeout: Duration,
) -> Result<String, String> {
    let mut child = Command::new(program)
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            image,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {program}: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} image inspect {image} did not answer within {timeout:?}"
                ));
            }
            Err(e) => return Err(format!("wait for {program}: {e}")),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    if !status.success() {
        let first = stderr.lines().next().unwrap_or("").trim();
        return Err(format!("{program} image inspect {image}: {first}"));
    }
    pick_repo_digest(&stdout, reference)
        .ok_or_else(|| format!("{program} holds {image} without a digest for its repository (built locally, or never pushed or pulled)"))
}

/// The digest in `RepoDigests` (JSON list of `name@sha256:...`) whose name is
/// `reference`'s repository.
fn pick_repo_digest(json: &str, reference: &ImageReference) -> Option<String> {
    let list: Vec<String> = serde_json::from_str(json.trim()).ok()?;
    list.iter().find_map(|entry| {
        let parsed = ImageReference::parse(entry).ok()?;
        (parsed.registry == reference.registry && parsed.repository == reference.repository)
            .then_some(parsed.digest)?
    })
}

/// The `ImageID` of the ECS task metadata answer `json`, when its `Image` is
/// `reference`'s repository.
pub fn ecs_image_id(json: &str, reference: &ImageReference) -> Result<Option<String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("the task metadata is not JSON ({e})"))?;
    let Some(image) = value.get("Image").and_then(|v| v.as_str()) else {
        return Err("the task metadata has no Image".into());
    };
    let same = ImageReference::parse(image)
        .is_ok_and(|i| i.registry == reference.registry && i.repository == reference.repository);
    if !same {
        return Ok(None);
    }
    let Some(id) = value.get("ImageID").and_then(|v| v.as_str()) else {
        return Err("the task metadata has no ImageID".into());
    };
    let valid = id.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    });
    if !valid {
        return Err(format!(
            "the task metadata's ImageID {id:?} is not sha256:<64 hex>"
        ));
    }
    Ok(Some(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

    #[test]
    fn repo_digests_match_the_repository() {
        let r = ImageReference::parse("quay.io/biocontainers/bwa:0.7.17--h5bf99c6_8").unwrap();
        let json = format!(r#"["docker.io/library/bwa@{D}", "quay.io/biocontainers/bwa@{D}"]"#);
        assert_eq!(pick_repo_digest(&json, &r).as_deref(), Some(D));
        let other = format!(r#"["docker.io/library/bwa@{D}"]"#);
        assert_eq!(pick_repo_digest(&other, &r), None);
        assert_eq!(pick_repo_digest("[]", &r), None);
        assert_eq!(pick_repo_digest("not json", &r), None);
    }

    #[test]
    fn ecs_metadata_gives_the_image_id_of_the_same_image() {
        let r = ImageReference::parse("biocontainers/bwa:v1").unwrap();
        let answer = format!(r#"{{"Image": "biocontainers/bwa:v1", "ImageID": "{D}"}}"#);
        assert_eq!(ecs_image_id(&answer, &r).unwrap().as_deref(), Some(D));
        let other = format!(r#"{{"Image": "ubuntu:22.04", "ImageID": "{D}"}}"#);
        assert_eq!(ecs_image_id(&other, &r).unwrap(), None);
        let bad = r#"{"Image": "biocontainers/bwa:v1", "ImageID": "sha256:XYZ"}"#;
        assert!(ecs_image_id(bad, &r).unwrap_err().contains("ImageID"));
        assert!(ecs_image_id("[", &r).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn the_image_file_of_an_apptainer_container_is_hashed() {
        let dir = std::env::temp_dir().join(format!("prov-sif-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sif = dir.join("bwa.sif");
        std::fs::write(&sif, b"abc").unwrap();
        let env = |k: &str, v: &Path| vec![(k.to_owned(), v.display().to_string())];
        let found = container_image_file(&env("SINGULARITY_CONTAINER", &sif)).unwrap();
        assert_eq!(found.0, "SINGULARITY_CONTAINER");
        assert_eq!(
            file_digest(Path::new(&found.1)).unwrap(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            container_image_file(&env("APPTAINER_CONTAINER", &dir)),
            None,
            "a sandbox folder"
        );
        assert_eq!(container_image_file(&[]), None);
        assert!(
            file_digest(&dir.join("missing.sif"))
                .unwrap_err()
                .contains("missing.sif")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
