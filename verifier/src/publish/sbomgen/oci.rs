//! An OCI image layout (`oci-layout`, `index.json`, `blobs/`): picks one image manifest and
//! applies its layers, in order and with OCI whiteouts, to an in-memory [`Tree`].
//!
//! Nothing is extracted to disk. Files are hashed while their tar entry streams by; only package
//! database files are kept (see [`super::rootfs::wanted`]). Every blob read is checked against its
//! digest, and every path is normalised inside the tree: `../../etc/passwd` and `/etc/passwd` in a
//! layer both name the tree's `etc/passwd`, and a parent directory that is a symlink is resolved
//! inside the tree, as containerd's applier does.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256, Sha512};

use super::rootfs::{hash_stream, join, split_last, wanted, Entry, Kind, Limits, Tree};
use super::SbomGenError;

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Which image of a layout to read.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// The `org.opencontainers.image.ref.name` annotation of the wanted manifest.
    pub ref_name: Option<String>,
    /// `os/arch[/variant]`; default this host's `linux/<arch>`.
    pub platform: Option<String>,
}

/// The image read from a layout.
#[derive(Debug)]
pub struct Image {
    /// The image manifest's digest (`sha256:…`): the image's name in the SBOM.
    pub manifest_digest: String,
    pub ref_name: Option<String>,
    /// `os/arch[/variant]` when the index said.
    pub platform: Option<String>,
    pub layers: usize,
    pub tree: Tree,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: Option<String>,
    digest: String,
    size: Option<u64>,
    platform: Option<Platform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
    variant: Option<String>,
}

impl Platform {
    fn show(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// Whether `path` looks like an OCI image layout.
pub fn is_layout(path: &Path) -> bool {
    let file = |name: &str| {
        fs::symlink_metadata(path.join(name))
            .map(|m| m.is_file())
            .unwrap_or(false)
    };
    file("oci-layout") && file("index.json")
}

/// This host's platform in OCI's terms, `linux/amd64` on x86_64.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    format!("linux/{arch}")
}

fn invalid(layout: &Path, what: impl std::fmt::Display) -> SbomGenError {
    SbomGenError::Input(format!("OCI layout {}: {what}", layout.display()))
}

/// Reads the image `selector` picks from the layout at `layout`.
pub fn load(layout: &Path, selector: &Selector, limits: Limits) -> Result<Image, SbomGenError> {
    let index_bytes = read_bounded(&layout.join("index.json"), limits.max_json_bytes)?;
    let index: Index = serde_json::from_slice(&index_bytes)
        .map_err(|e| invalid(layout, format!("index.json: {e}")))?;
    let (manifest_desc, platform) = select(layout, index, selector, &limits)?;
    let manifest_bytes = read_blob(layout, &manifest_desc, limits.max_json_bytes)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(layout, format!("manifest {}: {e}", manifest_desc.digest)))?;
    if manifest.layers.len() > limits.max_layers {
        return Err(SbomGenError::Limit {
            what: "layers in the image",
            limit: limits.max_layers as u64,
        });
    }
    let mut tree = Tree::new(limits);
    let mut applier = Applier {
        tree: &mut tree,
        tar_entries: 0,
        opaque: HashSet::new(),
    };
    for (n, layer) in manifest.layers.iter().enumerate() {
        applier.apply_layer(layout, layer, n + 1)?;
    }
    Ok(Image {
        manifest_digest: manifest_desc.digest.clone(),
        ref_name: manifest_desc.annotations.get(REF_NAME).cloned(),
        platform,
        layers: manifest.layers.len(),
        tree,
    })
}

fn is_index_type(media_type: Option<&str>) -> Option<bool> {
    match media_type? {
        "application/vnd.oci.image.index.v1+json"
        | "application/vnd.docker.distribution.manifest.list.v2+json" => Some(true),
        "application/vnd.oci.image.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v2+json" => Some(false),
        _ => None,
    }
}

/// Follows nested indexes to one image manifest: by `--ref`, then by platform.
fn select(
    layout: &Path,
    index: Index,
    selector: &Selector,
    limits: &Limits,
) -> Result<(Descriptor, Option<String>), SbomGenError> {
    let mut candidates = index.manifests;
    if let Some(want) = &selector.ref_name {
        let names = ref_names(&candidates);
        candidates.retain(|d| d.annotations.get(REF_NAME) == Some(want));
        if candidates.is_empty() {
            return Err(invalid(
                layout,
                format!("no manifest named {want:?} (names: {names})"),
            ));
        }
    }
    for _ in 0..8 {
        let explicit = selector.platform.is_some();
        let wanted_platform = selector.platform.clone().unwrap_or_else(host_platform);
        // Attestation manifests (BuildKit's unknown/unknown) are not images.
        candidates.retain(|d| {
            d.platform.as_ref().is_none_or(|p| p.os != "unknown")
                && d.annotations
                    .get("vnd.docker.reference.type")
                    .is_none_or(|t| t != "attestation-manifest")
        });
        let chosen = match candidates.len() {
            0 => return Err(invalid(layout, "no image manifest in the index")),
            1 if !explicit || candidates[0].platform.is_none() => candidates.remove(0),
            _ => {
                let mut matching: Vec<Descriptor> = candidates
                    .iter()
                    .filter(|d| {
                        d.platform
                            .as_ref()
                            .is_some_and(|p| platform_matches(p, &wanted_platform))
                    })
                    .cloned()
                    .collect();
                match matching.len() {
                    1 => matching.remove(0),
                    0 if candidates.iter().all(|d| d.platform.is_none()) => {
                        return Err(invalid(
                            layout,
                            format!(
                                "{} images; choose one with --ref NAME (names: {})",
                                candidates.len(),
                                ref_names(&candidates)
                            ),
                        ))
                    }
                    0 => {
                        let available: Vec<String> = candidates
                            .iter()
                            .filter_map(|d| d.platform.as_ref().map(Platform::show))
                            .collect();
                        return Err(invalid(
                            layout,
                            format!(
                                "no image for {wanted_platform} (available: {}); choose one with --platform",
                                available.join(", ")
                            ),
                        ));
                    }
                    n => {
                        return Err(invalid(
                            layout,
                            format!(
                                "{n} images for {wanted_platform}; choose one with --ref NAME (names: {})",
                                ref_names(&matching)
                            ),
                        ))
                    }
                }
            }
        };
        let bytes = read_blob(layout, &chosen, limits.max_json_bytes)?;
        let is_index = match is_index_type(chosen.media_type.as_deref()) {
            Some(i) => i,
            None => serde_json::from_slice::<serde_json::Value>(&bytes)
                .map(|v| v.get("manifests").is_some())
                .unwrap_or(false),
        };
        if !is_index {
            let platform = chosen.platform.as_ref().map(Platform::show);
            return Ok((chosen, platform));
        }
        let nested: Index = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(layout, format!("index {}: {e}", chosen.digest)))?;
        candidates = nested.manifests;
    }
    Err(invalid(layout, "indexes nested more than 8 deep"))
}

fn ref_names(descriptors: &[Descriptor]) -> String {
    let names: Vec<&str> = descriptors
        .iter()
        .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn platform_matches(p: &Platform, wanted: &str) -> bool {
    let mut parts = wanted.split('/');
    let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
    os == Some(p.os.as_str())
        && arch == Some(p.architecture.as_str())
        && variant.is_none_or(|v| p.variant.as_deref() == Some(v))
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, SbomGenError> {
    let io_err = |e: io::Error| SbomGenError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let meta = fs::symlink_metadata(path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(SbomGenError::Input(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(SbomGenError::Limit {
            what: "bytes of an OCI index or manifest",
            limit: max,
        });
    }
    let mut bytes = Vec::new();
    fs::File::open(path)
        .map_err(io_err)?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > max {
        return Err(SbomGenError::Limit {
            what: "bytes of an OCI index or manifest",
            limit: max,
        });
    }
    Ok(bytes)
}

/// `blobs/<alg>/<hex>` for a digest vouch can check, refusing symlinks along the way.
fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, SbomGenError> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| invalid(layout, format!("malformed digest {digest:?}")))?;
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(invalid(
                layout,
                format!("unsupported digest algorithm in {digest:?}"),
            ))
        }
    };
    if hex.len() != len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid(layout, format!("malformed digest {digest:?}")));
    }
    for dir in [layout.join("blobs"), layout.join("blobs").join(alg)] {
        let is_dir = fs::symlink_metadata(&dir)
            .map(|m| m.is_dir())
            .unwrap_or(false);
        if !is_dir {
            return Err(invalid(
                layout,
                format!("{} is not a directory", dir.display()),
            ));
        }
    }
    Ok(layout.join("blobs").join(alg).join(hex))
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Hashes what is read through it, for checking a blob against its digest.
struct Verifying<R> {
    inner: R,
    hasher: Hasher,
    read: u64,
}

impl<R: Read> Read for Verifying<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match &mut self.hasher {
            Hasher::Sha256(h) => h.update(&buf[..n]),
            Hasher::Sha512(h) => h.update(&buf[..n]),
        }
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Read> Verifying<R> {
    /// Reads what is left, then compares.
    fn finish(mut self, layout: &Path, desc: &Descriptor) -> Result<(), SbomGenError> {
        io::copy(&mut self, &mut io::sink()).map_err(|e| SbomGenError::Io {
            path: desc.digest.clone(),
            source: e,
        })?;
        let actual = match self.hasher {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        };
        if actual != desc.digest {
            return Err(invalid(
                layout,
                format!("blob {} has digest {actual}", desc.digest),
            ));
        }
        if let Some(size) = desc.size {
            if size != self.read {
                return Err(invalid(
                    layout,
                    format!("blob {} is {} bytes, not {size}", desc.digest, self.read),
                ));
            }
        }
        Ok(())
    }
}

fn open_blob(
    layout: &Path,
    desc: &Descriptor,
) -> Result<Verifying<BufReader<fs::File>>, SbomGenError> {
    let path = blob_path(layout, &desc.digest)?;
    let io_err = |e: io::Error| SbomGenError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let meta = fs::symlink_metadata(&path).map_err(io_err)?;
    if !meta.is_file() {
        return Err(invalid(
            layout,
            format!("blob {} is not a regular file", desc.digest),
        ));
    }
    let file = fs::File::open(&path).map_err(io_err)?;
    let hasher = if desc.digest.starts_with("sha512:") {
        Hasher::Sha512(Sha512::new())
    } else {
        Hasher::Sha256(Sha256::new())
    };
    Ok(Verifying {
        inner: BufReader::with_capacity(64 * 1024, file),
        hasher,
        read: 0,
    })
}

fn read_blob(layout: &Path, desc: &Descriptor, max: u64) -> Result<Vec<u8>, SbomGenError> {
    if desc.size.is_some_and(|s| s > max) {
        return Err(SbomGenError::Limit {
            what: "bytes of an OCI index or manifest",
            limit: max,
        });
    }
    let mut blob = open_blob(layout, desc)?;
    let mut bytes = Vec::new();
    (&mut blob)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SbomGenError::Io {
            path: desc.digest.clone(),
            source: e,
        })?;
    if bytes.len() as u64 > max {
        return Err(SbomGenError::Limit {
            what: "bytes of an OCI index or manifest",
            limit: max,
        });
    }
    blob.finish(layout, desc)?;
    Ok(bytes)
}

struct Applier<'t> {
    tree: &'t mut Tree,
    tar_entries: usize,
    /// Directories made opaque in the current layer: repeating the marker changes nothing, and
    /// skipping it keeps a layer of repeated markers from rescanning a large subtree each time.
    opaque: HashSet<String>,
}

impl Applier<'_> {
    fn apply_layer(
        &mut self,
        layout: &Path,
        desc: &Descriptor,
        layer: usize,
    ) -> Result<(), SbomGenError> {
        self.opaque.clear();
        let media_type = desc.media_type.as_deref().unwrap_or("");
        let mut blob = open_blob(layout, desc)?;
        let io_err = |e: io::Error| SbomGenError::Io {
            path: desc.digest.clone(),
            source: e,
        };
        let magic = blob.inner.fill_buf().map_err(io_err)?;
        let zstd = magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || media_type.ends_with("+zstd");
        if zstd {
            return Err(SbomGenError::Unsupported(format!(
                "layer {} is zstd-compressed, which vouch sbom does not read; convert the image \
                 to gzip layers (e.g. skopeo copy --dest-compress-format gzip)",
                desc.digest
            )));
        }
        let blob = if magic.starts_with(&[0x1f, 0x8b]) {
            let gz = self.apply_tar(flate2::read::MultiGzDecoder::new(blob), desc, layer)?;
            gz.into_inner()
        } else {
            self.apply_tar(blob, desc, layer)?
        };
        blob.finish(layout, desc)
    }

    /// Applies one layer's tar stream and returns the reader, drained.
    fn apply_tar<R: Read>(
        &mut self,
        reader: R,
        desc: &Descriptor,
        layer: usize,
    ) -> Result<R, SbomGenError> {
        let tar_err = |e: io::Error| {
            SbomGenError::Input(format!("layer {}: not a readable tar: {e}", desc.digest))
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(tar_err)? {
            let entry = entry.map_err(tar_err)?;
            self.tar_entries += 1;
            if self.tar_entries > self.tree.limits().max_tar_entries {
                return Err(SbomGenError::Limit {
                    what: "tar entries over all layers",
                    limit: self.tree.limits().max_tar_entries as u64,
                });
            }
            self.apply_entry(entry, layer).map_err(|e| match e {
                SbomGenError::Io { source, .. } => tar_err(source),
                other => other,
            })?;
        }
        let mut reader = archive.into_inner();
        io::copy(&mut reader, &mut io::sink()).map_err(tar_err)?;
        Ok(reader)
    }

    fn apply_entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        layer: usize,
    ) -> Result<(), SbomGenError> {
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = self.tree.normalise(&raw)?;
        if path.is_empty() {
            return Ok(());
        }
        let (parent, name) = split_last(&path);
        // A parent that is a symlink (`a -> /etc`, then `a/passwd`) is resolved inside the tree.
        let Some(parent) = self.tree.resolve(parent, true) else {
            self.tree
                .warnings
                .push(format!("skipped /{path}: symlink loop in its parent"));
            return Ok(());
        };
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden == ".wh..opq" {
                if self.opaque.insert(parent.clone()) {
                    self.tree.remove_tree(&parent, layer, true);
                }
            } else if !hidden.is_empty() && hidden != "." && hidden != ".." {
                self.tree.remove_tree(&join(&parent, hidden), layer, false);
            }
            return Ok(());
        }
        let path = join(&parent, name);
        let mode = entry.header().mode().unwrap_or(0) & 0o7777;
        let kind = entry.header().entry_type();
        let (kind, contents) = match kind {
            // The tar crate expands GNU sparse files as they are read.
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let keep = wanted(&path) && self.tree.may_keep(&path, entry.size());
                let max = self.tree.limits().max_db_file_bytes;
                let hashed = hash_stream(&mut entry, keep, max).map_err(|e| SbomGenError::Io {
                    path: path.clone(),
                    source: e,
                })?;
                (
                    Kind::File {
                        size: hashed.size,
                        sha256: hashed.sha256,
                        sha1: hashed.sha1,
                    },
                    hashed.contents,
                )
            }
            tar::EntryType::Directory => (Kind::Dir, None),
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                if target.len() > self.tree.limits().max_path_bytes {
                    return Err(SbomGenError::Limit {
                        what: "path length in bytes",
                        limit: self.tree.limits().max_path_bytes as u64,
                    });
                }
                (Kind::Symlink(target), None)
            }
            tar::EntryType::Link => {
                // A hard link names an earlier entry by its path in the archive.
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let target = self.tree.normalise(&target)?;
                let (dir, base) = split_last(&target);
                let resolved = self.tree.resolve(dir, true).map(|d| join(&d, base));
                let found = resolved.as_ref().and_then(|t| {
                    let entry = self.tree.get(t)?;
                    matches!(entry.kind, Kind::File { .. })
                        .then(|| (entry.kind.clone(), self.tree.read(t).map(<[u8]>::to_vec)))
                });
                match found {
                    Some((kind, contents)) => {
                        // Kept contents count against the package-database budget, link or not.
                        let keep = match &contents {
                            Some(c) if wanted(&path) => {
                                let len = u64::try_from(c.len()).unwrap_or(u64::MAX);
                                self.tree.may_keep(&path, len)
                            }
                            _ => false,
                        };
                        (kind, contents.filter(|_| keep))
                    }
                    None => {
                        self.tree.warnings.push(format!(
                            "skipped /{path}: hard link to /{target}, which is not a regular file"
                        ));
                        return Ok(());
                    }
                }
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                self.tree.skipped_special += 1;
                return Ok(());
            }
            // Pax and GNU headers are read by the tar crate; anything else says nothing about files.
            _ => return Ok(()),
        };
        self.tree
            .insert(path, Entry { kind, mode, layer }, contents)?;
        Ok(())
    }
}
