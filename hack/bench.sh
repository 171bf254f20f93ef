#!/usr/bin/env bash
# Container start benchmark: start-to-exit of /bin/true through `ctr run --rm`, vouch against the
# stock io.containerd.runc.v2 shim, interleaved in one run on one private containerd; then the
# resident memory of each shim with one running container.
#
#   hack/bench.sh            # 30 runs of each (BENCH_RUNS=N to change)
#
# The vouch gate runs for real: default-deny policy, an allow rule for the image, and the image
# digest looked up in containerd on every start.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/lib.sh"
runs=${BENCH_RUNS:-30}

command -v containerd >/dev/null || "$here/setup.sh"
target=${CARGO_TARGET_DIR:-$repo/target}
(cd "$repo" && cargo build --quiet --release -p vouch-shim -p vouch-verifier)

root=$(mktemp -d /tmp/vouch-bench.XXXXXX)
sock=$root/c.sock
ns=bench
cleanup() {
	set +e
	for t in $(ctr -a "$sock" -n $ns tasks ls -q 2>/dev/null); do
		ctr -a "$sock" -n $ns tasks kill -s SIGKILL "$t" >/dev/null 2>&1
		sleep 0.2
		ctr -a "$sock" -n $ns tasks rm -f "$t" >/dev/null 2>&1
	done
	stop_pid "${CONTAINERD_PID:-}"
	stop_shims_of "$sock"
	unmount_under "$root"
	rmdir "/run/containerd/runc/$ns" 2>/dev/null
	rm -rf "$root"
}
trap cleanup EXIT

mkdir -p "$root/bin"
cp "$target/release/containerd-shim-vouch-v2" "$target/release/vouch" "$root/bin/"
write_configs "$root"
cat >"$root/vouch/policy.toml" <<EOT
version = 1
default = "deny"
[[rule]]
name = "bench"
images = ["docker.io/library/bench"]
action = "allow"
EOT
export VOUCH_CONFIG=$root/vouch/config.toml
start_containerd "$root" "$root/bin"

build_busybox_layout "$root/layout" latest /bin/true
(cd "$root/layout" && tar cf "$root/image.tar" .)
ctr -a "$sock" -n $ns images import --index-name docker.io/library/bench:latest "$root/image.tar" >/dev/null

now_ms() { date +%s%N; }
run_once() {
	local runtime=$1 id=$2 t0 t1
	t0=$(now_ms)
	timeout -k 5 60 ctr -a "$sock" -n $ns run --rm --runtime "$runtime" docker.io/library/bench:latest "$id" /bin/true
	t1=$(now_ms)
	echo $(((t1 - t0) / 1000))
}

# Warm both paths once (page cache, snapshot), then interleave.
run_once io.containerd.vouch.v2 warm-v >/dev/null
run_once io.containerd.runc.v2 warm-r >/dev/null
: >"$root/vouch.us"
: >"$root/runc.us"
for i in $(seq 1 "$runs"); do
	run_once io.containerd.vouch.v2 "v$i" >>"$root/vouch.us"
	run_once io.containerd.runc.v2 "r$i" >>"$root/runc.us"
done

stats() { sort -n "$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f", m/1000, a[1]/1000, a[NR]/1000}'; }
read -r vm vmin vmax <<<"$(stats "$root/vouch.us")"
read -r rm_ rmin rmax <<<"$(stats "$root/runc.us")"
ratio=$(awk -v a="$vm" -v b="$rm_" 'BEGIN { printf "%.3f", a / b }')

# Resident memory of each shim serving one running container.
shim_pid() {
	local id=$1 p
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "-id $id -address $sock "; then
			echo "${p#/proc/}"
			return
		fi
	done
}
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
ctr -a "$sock" -n $ns run -d --runtime io.containerd.vouch.v2 docker.io/library/bench:latest mem-v /bin/sleep 600
ctr -a "$sock" -n $ns run -d --runtime io.containerd.runc.v2 docker.io/library/bench:latest mem-r /bin/sleep 600
sleep 1
vp=$(shim_pid mem-v)
rp=$(shim_pid mem-r)

cat <<EOT
host: $(nproc) cores, $(uname -r), containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}')
start-to-exit of /bin/true via ctr run --rm, $runs runs each, interleaved (ms):
  vouch  median $vm  (min $vmin, max $vmax)
  runc   median $rm_  (min $rmin, max $rmax)
  ratio  $ratio
shim resident memory with one running container (kB):
  vouch  VmRSS $(rss_kb "$vp" VmRSS)  RssAnon $(rss_kb "$vp" RssAnon)  RssFile $(rss_kb "$vp" RssFile)
  runc   VmRSS $(rss_kb "$rp" VmRSS)  RssAnon $(rss_kb "$rp" RssAnon)  RssFile $(rss_kb "$rp" RssFile)
EOT
