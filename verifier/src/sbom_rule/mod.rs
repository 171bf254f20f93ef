//! SBOM policy: the `[rule.sbom]` requirement of a verify rule, evaluated over the attestations
//! found for an image.

pub mod purl;
mod requirement;
pub mod version;

pub use purl::{PackageMatcher, Purl};
pub use requirement::{describe, parse_format, parse_severity, Ignore, MinField, SbomRequirement};
