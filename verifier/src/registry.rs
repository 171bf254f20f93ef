//! The OCI distribution client: manifests, blobs, tags, referrers, signature discovery.
