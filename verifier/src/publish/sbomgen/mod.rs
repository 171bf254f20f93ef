//! `vouch sbom`: an SBOM (SPDX 2.3 or CycloneDX 1.5 JSON) of an unpacked root filesystem or of an
//! image in an OCI image layout.
//!
//! - [`rootfs`]: the tree, walked from a directory without following symlinks;
//! - [`oci`]: the tree of an image of an OCI layout, its layers applied in memory;
//! - [`dpkg`], [`apk`], [`python`], [`npm`]: the package databases read from the tree;
//! - [`spdx_out`], [`cdx_out`]: the two documents, deterministic apart from their timestamp.
//!
//! Everything read is hostile input: paths are resolved inside the tree only, and the tree, the
//! package databases kept in memory and the layers are bounded ([`Limits`]).

pub mod apk;
mod cdx_out;
pub mod dpkg;
pub mod licenses;
pub mod npm;
pub mod oci;
pub mod package;
pub mod python;
pub mod rootfs;
mod spdx_out;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use package::{Ecosystem, Package, Supplier};
pub use rootfs::{Limits, Tree};

/// Why no SBOM was made: one line.
#[derive(Debug, thiserror::Error)]
pub enum SbomGenError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Not a directory or layout vouch can read, or a malformed layout.
    #[error("{0}")]
    Input(String),
    #[error("{what} over the limit of {limit}")]
    Limit { what: &'static str, limit: u64 },
    #[error("{0}")]
    Unsupported(String),
    #[error("invalid --author {0:?}: write `Person: NAME` or `Organization: NAME`")]
    Author(String),
    #[error("cannot render the SBOM: {0}")]
    Render(String),
}

/// The document to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    SpdxJson,
    CycloneDxJson,
}

/// Who wrote the SBOM data (NTIA's "author of SBOM data").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Person(String),
    Organization(String),
}

impl Author {
    /// `Person: NAME` or `Organization: NAME`; a bare name is an organisation.
    pub fn parse(text: &str) -> Result<Author, SbomGenError> {
        let text = text.trim();
        let (kind, name) = match text.split_once(':') {
            Some((k, n)) if k.trim() == "Person" => (true, n.trim()),
            Some((k, n)) if k.trim() == "Organization" => (false, n.trim()),
            _ => (false, text),
        };
        if name.is_empty() || name.contains(['\n', '\r']) || name.len() > 256 {
            return Err(SbomGenError::Author(text.to_owned()));
        }
        Ok(if kind {
            Author::Person(name.to_owned())
        } else {
            Author::Organization(name.to_owned())
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Author::Person(n) | Author::Organization(n) => n,
        }
    }

    pub(crate) fn spdx(&self) -> String {
        match self {
            Author::Person(n) => format!("Person: {n}"),
            Author::Organization(n) => format!("Organization: {n}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub format: OutputFormat,
    pub authors: Vec<Author>,
    /// The document's creation time; default now.
    pub created: Option<OffsetDateTime>,
    pub selector: oci::Selector,
    pub limits: Limits,
}

/// `etc/os-release` (or `usr/lib/os-release`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distro {
    /// `ID`, lower case: `debian`, `ubuntu`, `alpine`.
    pub id: Option<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

impl Distro {
    fn read(tree: &Tree) -> Distro {
        let Some(bytes) = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|p| tree.read(p))
        else {
            return Distro::default();
        };
        let text = String::from_utf8_lossy(bytes);
        let value = |key: &str| {
            text.lines().find_map(|l| {
                let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
                let v = v.trim().trim_matches(|c| c == '"' || c == '\'').trim();
                (!v.is_empty() && v.len() <= 256).then(|| v.to_owned())
            })
        };
        Distro {
            id: value("ID").map(|s| s.to_ascii_lowercase()),
            version_id: value("VERSION_ID"),
            pretty_name: value("PRETTY_NAME"),
        }
    }
}

/// What the SBOM describes.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The manifest digest of an image, the name of a directory.
    pub name: String,
    /// `sha256:…` of an image's manifest.
    pub digest: Option<String>,
    pub ref_name: Option<String>,
    pub platform: Option<String>,
    pub is_image: bool,
}

/// A tree and what its package databases say.
#[derive(Debug)]
pub struct Inventory {
    pub subject: Subject,
    pub distro: Distro,
    /// Sorted by ecosystem, then as each reader sorts; `depends_on` indexes this list.
    pub packages: Vec<Package>,
    pub tree: Tree,
}

/// Reads the tree at `path` (an OCI layout or a directory) and its packages.
pub fn scan(path: &Path, options: &Options) -> Result<Inventory, SbomGenError> {
    let (tree, subject) = if oci::is_layout(path) {
        let image = oci::load(path, &options.selector, options.limits.clone())?;
        let subject = Subject {
            name: image.manifest_digest.clone(),
            digest: Some(image.manifest_digest),
            ref_name: image.ref_name,
            platform: image.platform,
            is_image: true,
        };
        (image.tree, subject)
    } else {
        if options.selector.ref_name.is_some() || options.selector.platform.is_some() {
            return Err(SbomGenError::Input(format!(
                "{} is not an OCI image layout (no oci-layout and index.json); --ref and \
                 --platform apply to layouts only",
                path.display()
            )));
        }
        let tree = Tree::from_dir(path, options.limits.clone())?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .or_else(|| {
                let real = std::fs::canonicalize(path).ok()?;
                Some(real.file_name()?.to_string_lossy().into_owned())
            })
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .unwrap_or_else(|| "rootfs".to_owned());
        let subject = Subject {
            name,
            digest: None,
            ref_name: None,
            platform: None,
            is_image: false,
        };
        (tree, subject)
    };
    let distro = Distro::read(&tree);
    let mut packages = Vec::new();
    for found in [
        dpkg::read(&tree, &distro),
        apk::read(&tree, &distro),
        python::read(&tree),
        npm::read(&tree),
    ] {
        let offset = packages.len();
        packages.extend(found.into_iter().map(|mut p| {
            p.depends_on.iter_mut().for_each(|d| *d += offset);
            p
        }));
    }
    Ok(Inventory {
        subject,
        distro,
        packages,
        tree,
    })
}

/// A rendered document and what it holds.
#[derive(Debug)]
pub struct Generated {
    pub document: Vec<u8>,
    pub summary: Summary,
}

/// Counts for the one-line summary, and what was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub packages: Vec<(Ecosystem, usize)>,
    pub files: usize,
    pub warnings: Vec<String>,
}

impl std::fmt::Display for Summary {
    /// `14 packages (dpkg 12, python 2), 2,345 files`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total: usize = self.packages.iter().map(|(_, n)| n).sum();
        write!(
            f,
            "{} package{}",
            thousands(total),
            if total == 1 { "" } else { "s" }
        )?;
        if total > 0 {
            let parts: Vec<String> = self
                .packages
                .iter()
                .map(|(e, n)| format!("{e} {}", thousands(*n)))
                .collect();
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(
            f,
            ", {} file{}",
            thousands(self.files),
            if self.files == 1 { "" } else { "s" }
        )
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What both renderers share.
pub(crate) struct Meta<'a> {
    pub created: OffsetDateTime,
    pub authors: &'a [Author],
    pub tool_version: &'static str,
    /// A UUID-shaped digest of the content (everything but the timestamp).
    pub uuid: String,
}

/// Scans `path` and renders the document.
pub fn generate(path: &Path, options: &Options) -> Result<Generated, SbomGenError> {
    let inventory = scan(path, options)?;
    render(&inventory, options)
}

/// Renders an inventory.
pub fn render(inventory: &Inventory, options: &Options) -> Result<Generated, SbomGenError> {
    let created = options
        .created
        .unwrap_or_else(OffsetDateTime::now_utc)
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| SbomGenError::Render(e.to_string()))?;
    let meta = Meta {
        created,
        authors: &options.authors,
        tool_version: env!("CARGO_PKG_VERSION"),
        uuid: content_uuid(inventory, options),
    };
    let value = match options.format {
        OutputFormat::SpdxJson => spdx_out::render(inventory, &meta)?,
        OutputFormat::CycloneDxJson => cdx_out::render(inventory, &meta)?,
    };
    let mut document =
        serde_json::to_vec(&value).map_err(|e| SbomGenError::Render(e.to_string()))?;
    document.push(b'\n');
    let mut counts: Vec<(Ecosystem, usize)> = Vec::new();
    for p in &inventory.packages {
        match counts.last_mut() {
            Some((e, n)) if *e == p.ecosystem => *n += 1,
            _ => counts.push((p.ecosystem, 1)),
        }
    }
    let mut warnings = inventory.tree.warnings.clone();
    if inventory.tree.skipped_special > 0 {
        warnings.push(format!(
            "{} special files (devices, FIFOs, sockets) left out",
            inventory.tree.skipped_special
        ));
    }
    Ok(Generated {
        document,
        summary: Summary {
            packages: counts,
            files: inventory.tree.file_count(),
            warnings,
        },
    })
}

fn content_uuid(inventory: &Inventory, options: &Options) -> String {
    let mut h = Sha256::new();
    let mut feed = |s: &str| {
        h.update(s.as_bytes());
        h.update([0]);
    };
    feed(match options.format {
        OutputFormat::SpdxJson => "spdx",
        OutputFormat::CycloneDxJson => "cyclonedx",
    });
    feed(&inventory.subject.name);
    for a in &options.authors {
        feed(&a.spdx());
    }
    for p in &inventory.packages {
        feed(&p.purl);
        feed(&p.location);
        feed(p.license.as_deref().unwrap_or(""));
        feed(p.supplier.as_ref().map(Supplier::name).unwrap_or(""));
        for f in &p.files {
            feed(f);
        }
    }
    for f in inventory.tree.files() {
        feed(f.path);
        feed(&hex::encode(f.sha256));
    }
    let d: [u8; 32] = h.finalize().into();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    // RFC 9562 version 8 (custom) and variant bits, so it reads as a UUID.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed over.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SbomGenError> {
    let io_err = |p: &Path, e: std::io::Error| SbomGenError::Io {
        path: p.display().to_string(),
        source: e,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| SbomGenError::Input(format!("{} is not a file name", path.display())))?;
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{attempt}",
            name.to_string_lossy(),
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1
            }
            Err(e) => return Err(io_err(&tmp, e)),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|_| file.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

/// The purl of the SBOM's subject: `pkg:oci/<name>@sha256%3A<hex>` for an image (named by its ref
/// name, else `image`), `pkg:generic/<name>` for a directory. NTIA's minimum elements ask every
/// component for an identifier, the described one included.
pub(crate) fn subject_purl(subject: &Subject) -> String {
    match (&subject.digest, subject.is_image) {
        (Some(digest), true) => format!(
            "pkg:oci/{}@{}",
            purl_segment(subject.ref_name.as_deref().unwrap_or("image")),
            digest.replace(':', "%3A")
        ),
        _ => format!("pkg:generic/{}", purl_segment(&subject.name)),
    }
}

/// The purl of the operating system found in `etc/os-release`: `pkg:generic/<ID>@<VERSION_ID>`.
pub(crate) fn os_purl(distro: &Distro) -> Option<String> {
    let id = distro.id.as_deref()?;
    Some(match &distro.version_id {
        Some(v) => format!("pkg:generic/{}@{}", purl_segment(id), purl_segment(v)),
        None => format!("pkg:generic/{}", purl_segment(id)),
    })
}

/// Percent-encodes what a purl segment may not hold as is.
fn purl_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
