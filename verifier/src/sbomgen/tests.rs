//! Trees built in temporary directories: symlinks resolved inside the tree, the limits, the digests.

use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::*;

fn write(root: &Path, rel: &str, contents: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

fn symlink(root: &Path, rel: &str, target: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

#[test]
fn symlinks_resolve_inside_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "etc/passwd", "root:x:0:0\n");
    symlink(root, "a", "/etc");
    symlink(root, "b", "../../../../etc");
    symlink(root, "loop1", "loop2");
    symlink(root, "loop2", "loop1");
    let tree = Tree::from_dir(root, Limits::default()).unwrap();
    assert_eq!(
        tree.resolve("a/passwd", true).as_deref(),
        Some("etc/passwd")
    );
    assert_eq!(
        tree.resolve("b/passwd", true).as_deref(),
        Some("etc/passwd")
    );
    assert_eq!(tree.resolve("/../../a", false).as_deref(), Some("a"));
    assert_eq!(tree.resolve("loop1/x", true), None);
}

#[test]
fn the_entry_limit_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        write(dir.path(), &format!("d/f{i}"), "x");
    }
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let err = Tree::from_dir(dir.path(), limits).unwrap_err();
    assert!(
        matches!(err, SbomGenError::Limit { limit: 10, .. }),
        "{err}"
    );
}

#[test]
fn files_are_hashed_with_sha256_and_sha1() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "abc", "abc");
    let big: String = "0123456789abcdef".repeat(10_000);
    write(dir.path(), "big", &big);
    let tree = Tree::from_dir(dir.path(), Limits::default()).unwrap();
    let files: Vec<_> = tree.files().collect();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, "abc");
    assert_eq!(
        hex::encode(files[0].sha256),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex::encode(files[0].sha1),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(files[1].size, big.len() as u64);
    assert_eq!(
        files[1].sha256,
        &<[u8; 32]>::from(Sha256::digest(big.as_bytes()))
    );
}
