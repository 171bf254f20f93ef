# Shared helpers for the hack/ scripts: a private containerd and registry on loopback and unix sockets
# under a temporary directory, stopped by PID. Source it; do not run it.

# Builds a small busybox image as an OCI layout, offline (umoci + Debian's busybox-static).
# usage: build_busybox_layout DIR TAG [CMD...]
build_busybox_layout() {
	local dir=$1 tag=$2
	shift 2
	local work
	work=$(mktemp -d "${TMPDIR:-/tmp}/vouch-img.XXXXXX")
	[ -d "$dir" ] || umoci init --layout "$dir"
	umoci new --image "$dir:$tag"
	umoci unpack --image "$dir:$tag" "$work/bundle" >/dev/null
	mkdir -p "$work/bundle/rootfs/bin"
	cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
	local a
	for a in sh echo cat sleep true false head ls id env ps kill yes tty; do
		ln -sf busybox "$work/bundle/rootfs/bin/$a"
	done
	umoci repack --image "$dir:$tag" "$work/bundle"
	umoci config --image "$dir:$tag" --config.env PATH=/bin --config.cmd "${1:-/bin/sh}" >/dev/null
	rm -rf "$work"
}

# Adds Debian package metadata to a busybox image: layout DIR, new tag TAG from tag FROM, with a
# package `libdemo1` under license LICENSE (a Debian copyright-format name, e.g. Expat or GPL-3).
add_debian_packages() {
	local dir=$1 from=$2 tag=$3 license=$4 work r
	work=$(mktemp -d "${TMPDIR:-/tmp}/vouch-img.XXXXXX")
	umoci unpack --image "$dir:$from" "$work/bundle" >/dev/null
	r=$work/bundle/rootfs
	mkdir -p "$r/etc" "$r/var/lib/dpkg/info" "$r/usr/lib" "$r/usr/share/doc/libdemo1" "$r/usr/share/doc/base-files"
	printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="12"\n' >"$r/etc/os-release"
	cat >"$r/var/lib/dpkg/status" <<EOT
Package: base-files
Status: install ok installed
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: libdemo1
Status: install ok installed
Maintainer: Demo Maintainers <pkg@example.com>
Architecture: amd64
Source: demo
Version: 1.2.3-1
Depends: base-files
Description: a demo library
EOT
	printf '/etc\n/etc/debian_version\n' >"$r/var/lib/dpkg/info/base-files.list"
	printf '/usr\n/usr/lib\n/usr/lib/libdemo.so.1\n' >"$r/var/lib/dpkg/info/libdemo1:amd64.list"
	echo 12.5 >"$r/etc/debian_version"
	echo "demo library" >"$r/usr/lib/libdemo.so.1"
	printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: Debian\nLicense: GPL-2+\n' >"$r/usr/share/doc/base-files/copyright"
	printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2024 Example\nLicense: %s\n' "$license" >"$r/usr/share/doc/libdemo1/copyright"
	umoci repack --image "$dir:$tag" "$work/bundle"
	rm -rf "$work"
}

# Adds one file to an image: layout DIR, new tag TAG from tag FROM, PATH (inside the image) with TEXT.
add_file() {
	local dir=$1 from=$2 tag=$3 path=$4 text=$5 work
	work=$(mktemp -d "${TMPDIR:-/tmp}/vouch-img.XXXXXX")
	umoci unpack --image "$dir:$from" "$work/bundle" >/dev/null
	mkdir -p "$(dirname "$work/bundle/rootfs/$path")"
	printf '%s\n' "$text" >"$work/bundle/rootfs/$path"
	umoci repack --image "$dir:$tag" "$work/bundle"
	rm -rf "$work"
}

# Picks a free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Writes ROOT/config.toml for a private containerd (no CRI) serving ROOT/c.sock, and a vouch node
# config ROOT/vouch/config.toml naming ROOT/vouch/policy.toml.
write_configs() {
	local root=$1
	mkdir -p "$root/vouch"
	cat >"$root/config.toml" <<EOT
version = 2
root = "$root/root"
state = "$root/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$root/c.sock"
[ttrpc]
  address = "$root/c.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$root/opt"
EOT
	cat >"$root/vouch/config.toml" <<EOT
policy = "$root/vouch/policy.toml"
state_dir = "$root/vouch/state"
EOT
}

# Starts docker-registry on a free loopback port with its storage under ROOT/registry.
# Sets REGISTRY_PID and REGISTRY (host:port).
start_registry() {
	local root=$1 port
	port=$(free_port)
	mkdir -p "$root/registry"
	cat >"$root/registry.yml" <<EOT
version: 0.1
storage:
  filesystem:
    rootdirectory: $root/registry
http:
  addr: 127.0.0.1:$port
log:
  level: error
  accesslog:
    disabled: true
EOT
	docker-registry serve "$root/registry.yml" >"$root/registry.log" 2>&1 &
	REGISTRY_PID=$!
	REGISTRY=127.0.0.1:$port
	local i
	for i in $(seq 1 100); do
		curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "docker-registry did not start; log:" >&2
	tail -20 "$root/registry.log" >&2
	return 1
}

# Starts a software TPM (swtpm) on two free loopback ports with its state under ROOT/swtpm.
# Sets SWTPM_PID and SWTPM_TCTI (for [tpm] tcti and TPM2TOOLS_TCTI). The swtpm TCTI reaches the
# control channel at the server port + 1, so the two ports are adjacent.
start_swtpm() {
	local root=$1 port ctrl i
	mkdir -p "$root/swtpm"
	for i in $(seq 1 20); do
		port=$(free_port)
		ctrl=$((port + 1))
		swtpm socket --tpm2 --tpmstate "dir=$root/swtpm" \
			--server "type=tcp,port=$port,bindaddr=127.0.0.1" \
			--ctrl "type=tcp,port=$ctrl,bindaddr=127.0.0.1" \
			--flags not-need-init,startup-clear >"$root/swtpm.log" 2>&1 &
		SWTPM_PID=$!
		SWTPM_TCTI="swtpm:host=127.0.0.1,port=$port"
		local j
		for j in $(seq 1 50); do
			kill -0 "$SWTPM_PID" 2>/dev/null || break
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				return 0
			fi
			sleep 0.1
		done
		stop_pid "$SWTPM_PID"
	done
	echo "swtpm did not start; log:" >&2
	tail -20 "$root/swtpm.log" >&2
	return 1
}

# Starts a private containerd with ROOT/config.toml (written by the caller). Sets CONTAINERD_PID.
start_containerd() {
	local root=$1 shim_dir=$2
	PATH="$shim_dir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		containerd --config "$root/config.toml" >"$root/containerd.log" 2>&1 &
	CONTAINERD_PID=$!
	local i
	for i in $(seq 1 100); do
		if ctr -a "$root/c.sock" version >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "containerd did not start; log:" >&2
	tail -20 "$root/containerd.log" >&2
	return 1
}

# Stops a process by PID: TERM, then KILL after a grace period.
stop_pid() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	local i
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# Kills the shims a private containerd started (they outlive it), found by its socket in their
# command line, by PID; removes the ttrpc socket each of them served.
stop_shims_of() {
	local sock=$1 p args
	for p in /proc/[0-9]*; do
		args=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		case "$args" in
		*"-address $sock "*)
			kill -KILL "${p#/proc/}" 2>/dev/null || true
			local s=${args##*-socket unix://}
			s=${s%% *}
			[ -S "$s" ] && rm -f "$s"
			;;
		esac
	done
}

# Stops everything a script started under ROOT and removes it: the tasks of containerd namespace NS,
# containerd (CONTAINERD_PID), the shims it started, the registry (REGISTRY_PID), every mount.
teardown() {
	local root=$1 ns=$2 sock=$1/c.sock t
	set +e
	for t in $(ctr -a "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
		ctr -a "$sock" -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1
		sleep 0.2
		ctr -a "$sock" -n "$ns" tasks rm -f "$t" >/dev/null 2>&1
	done
	stop_pid "${CONTAINERD_PID:-}"
	stop_shims_of "$sock"
	stop_pid "${REGISTRY_PID:-}"
	stop_pid "${SWTPM_PID:-}"
	unmount_under "$root"
	rmdir "/run/containerd/runc/$ns" 2>/dev/null
	rm -rf "$root"
}

# Unmounts everything under a directory, deepest first.
unmount_under() {
	local root=$1
	awk -v r="$root" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}
