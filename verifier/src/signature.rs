//! Verification of cosign signatures: simple signing payloads, Rekor bundles, keyless certificates, Sigstore bundles.
