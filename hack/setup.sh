#!/usr/bin/env bash
# Installs what building and testing vouch needs on Debian 12 (as root), then builds every binary
# of the workspace (the integration tests install the shim from the target directory).
# Idempotent: apt runs only when a package is missing. Respects CARGO_TARGET_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

packages=(
	# the private containerd of the integration tests, and its runtime
	containerd runc
	# a loopback OCI registry and offline test images
	docker-registry umoci skopeo busybox-static
	# build dependencies: tonic-based crates (protoc), tss-esapi (libtss2, pkg-config)
	protobuf-compiler pkg-config libtss2-dev
	# the software TPM and an independent quote checker
	swtpm swtpm-tools tpm2-tools
	# scripts
	ca-certificates curl jq python3 coreutils util-linux bsdutils
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup.sh: missing packages (${missing[*]}); run as root" >&2
		exit 1
	fi
	echo "setup.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
	if [ -x "$HOME/.cargo/bin/cargo" ]; then
		export PATH="$HOME/.cargo/bin:$PATH"
	else
		echo "setup.sh: cargo not found; install a Rust toolchain (rustup) first" >&2
		exit 1
	fi
fi

cd "$repo"
cargo build --quiet --workspace --bins
