//! Measuring a container's root filesystem at start: the layers of its mounts, the writable layer
//! and `config.json`, with a per-layer cache re-validated by inode, size, mtime and ctime.
//!
//! Groundwork: not wired into the gate yet.
