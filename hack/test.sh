#!/usr/bin/env bash
# Installs what the tests need, then runs fmt, clippy and every test, unit and integration.
# Integration tests start their own containerd, registry and shims; they need root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
"$here/setup.sh"
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
# The shim and vouch binaries the integration tests install into their private containerd.
cargo build --workspace --bins --quiet
cargo test --workspace --no-fail-fast -- --test-threads="${VOUCH_TEST_THREADS:-4}"
