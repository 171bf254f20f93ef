#!/usr/bin/env bash
# Container start benchmark, interleaved in one run on one private containerd and registry:
# start-to-exit of /bin/true through `ctr run --rm` with the stock io.containerd.runc.v2 shim and
# with vouch under five policies (an allow rule; a verify rule with its verdict cached; the same
# verify rule with the cache cleared before each start, so the signature is fetched from the
# loopback registry and verified, as for a newly signed image; a verify rule with [rule.sbom], cached
# and with the cache cleared, so the signature and the SBOM attestation are fetched and judged); then `vouch verify` of a cached
# image, and the resident memory of each shim with one running container. Then measurement: an
# allow rule with [rule.rootfs] baseline = "image" and [rule.host], TPM required (swtpm, one quote
# per start), layers already measured; and a 100 MB / 5,000-file image whose first start is timed
# with the layer caches cleared (hashing) and with the image baseline cleared too (reading the
# layer blob), against the same image's measured start.
#
#   hack/bench.sh            # 30 runs of each (BENCH_RUNS=N to change)
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
REGISTRY_PID=
SWTPM_PID=
cleanup() { teardown "$root" "$ns"; }
trap cleanup EXIT

start_registry "$root"
mkdir -p "$root/bin" "$root/keys"
cp "$target/release/containerd-shim-vouch-v2" "$target/release/vouch" "$root/bin/"
write_configs "$root"
printf '[registry]\nplain_http = ["%s"]\n' "$REGISTRY" >>"$root/vouch/config.toml"
export VOUCH_CONFIG=$root/vouch/config.toml
export COSIGN_PASSWORD=bench
"$root/bin/vouch" keygen "$root/keys/bench" >/dev/null
cat >"$root/vouch/policy.toml" <<EOT
version = 1
default = "deny"
[[rule]]
name = "plain"
images = ["$REGISTRY/bench/plain"]
action = "allow"
[[rule]]
name = "signed"
images = ["$REGISTRY/bench/signed"]
action = "verify"
[[rule.authority]]
name = "bench"
key = "$root/keys/bench.pub"
# Pod Security ("restricted") is judged on every start of the two images above; ctr's root
# containers do not meet it, so this rule audits (the container runs, its record names what fails).
[[rule]]
name = "restricted-audit"
images = ["$REGISTRY/bench/plain", "$REGISTRY/bench/signed"]
action = "allow"
mode = "audit"
[rule.host]
allow_privileged = true
pod_security = "restricted"
[[rule]]
name = "sbom"
images = ["$REGISTRY/bench/sbom"]
action = "verify"
[[rule.authority]]
name = "bench"
key = "$root/keys/bench.pub"
[rule.sbom]
min_fields = ["supplier", "name", "version", "purl", "relationships", "author", "timestamp"]
deny_licenses = ["GPL-3.0-only", "AGPL-*"]
deny_packages = ["pkg:deb/debian/openssl@<3.0.7"]
deny_severity = "critical"
max_age_days = 90
[[rule]]
name = "measured"
images = ["$REGISTRY/bench/measured", "$REGISTRY/bench/big"]
action = "allow"
[rule.rootfs]
baseline = "image"
[rule.host]
allow_privileged = false
EOT
start_swtpm "$root"
# The measured cases use a second node config: the same policy and state, with the TPM required.
cp "$root/vouch/config.toml" "$root/vouch/tpm.toml"
printf '[tpm]\nmode = "required"\ntcti = "%s"\n' "$SWTPM_TCTI" >>"$root/vouch/tpm.toml"
# The node config lists it: vouch refuses a ConfigPath the node config does not allow.
sed -i "1i allowed_configs = [\"$root/vouch/tpm.toml\"]" "$root/vouch/config.toml"
start_containerd "$root" "$root/bin"

build_busybox_layout "$root/layout" latest /bin/true
for name in plain signed; do
	skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:latest" "docker://$REGISTRY/bench/$name:v1"
	ctr -a "$sock" -n $ns images pull --plain-http "$REGISTRY/bench/$name:v1" >/dev/null
done
"$root/bin/vouch" sign "$REGISTRY/bench/signed:v1" --key "$root/keys/bench.key" >/dev/null
# The SBOM image: the same busybox with Debian package metadata, an SBOM made by vouch sbom, attested.
add_debian_packages "$root/layout" latest sbom Expat
umoci config --image "$root/layout:sbom" --config.cmd /bin/true >/dev/null
skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:sbom" "docker://$REGISTRY/bench/sbom:v1"
ctr -a "$sock" -n $ns images pull --plain-http "$REGISTRY/bench/sbom:v1" >/dev/null
"$root/bin/vouch" sbom "$root/layout" --ref sbom --author "Organization: Bench" --file "$root/sbom.spdx.json" 2>/dev/null
"$root/bin/vouch" sign "$REGISTRY/bench/sbom:v1" --key "$root/keys/bench.key" >/dev/null
"$root/bin/vouch" attest "$REGISTRY/bench/sbom:v1" --predicate "$root/sbom.spdx.json" --type spdxjson --key "$root/keys/bench.key" >/dev/null
digest=$(ctr -a "$sock" -n $ns images ls | awk -v r="$REGISTRY/bench/signed:v1" '$1 == r { print $3 }')
skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:latest" "docker://$REGISTRY/bench/measured:v1"
ctr -a "$sock" -n $ns images pull --plain-http "$REGISTRY/bench/measured:v1" >/dev/null
# 100 MB in 5,000 files of random bytes (incompressible: the layer blob is ~100 MB too).
big=$(mktemp -d "$root/big.XXXXXX")
umoci unpack --image "$root/layout:latest" "$big/bundle" >/dev/null
python3 - "$big/bundle/rootfs/data" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(50):
    os.makedirs(f"{root}/{d:02}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/{d:02}/{f:03}.bin", "wb") as out:
            out.write(os.urandom(20000))
PY
umoci repack --image "$root/layout:big" "$big/bundle"
rm -rf "$big"
skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:big" "docker://$REGISTRY/bench/big:v1"
ctr -a "$sock" -n $ns images pull --plain-http "$REGISTRY/bench/big:v1" >/dev/null

now_ns() { date +%s%N; }
run_once() {
	local runtime=$1 image=$2 id=$3 t0 t1
	shift 3
	t0=$(now_ns)
	timeout -k 5 60 ctr -a "$sock" -n $ns run --rm --runtime "$runtime" "$@" "$image" "$id" /bin/true
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000))
}
plain=$REGISTRY/bench/plain:v1
signed=$REGISTRY/bench/signed:v1
sbom=$REGISTRY/bench/sbom:v1

# Warm every path once (page cache, snapshots, the verdict cache), then interleave.
run_once io.containerd.runc.v2 "$plain" warm-r >/dev/null
run_once io.containerd.vouch.v2 "$plain" warm-p >/dev/null
run_once io.containerd.vouch.v2 "$signed" warm-s >/dev/null
run_once io.containerd.vouch.v2 "$sbom" warm-b >/dev/null
tpmcfg=(--runtime-config-path "$root/vouch/tpm.toml")
measured=$REGISTRY/bench/measured:v1
bigimg=$REGISTRY/bench/big:v1
run_once io.containerd.vouch.v2 "$measured" warm-m "${tpmcfg[@]}" >/dev/null
run_once io.containerd.vouch.v2 "$bigimg" warm-g "${tpmcfg[@]}" >/dev/null
for s in runc plain cached first sbomc sbomf tpm; do : >"$root/$s.us"; done
for i in $(seq 1 "$runs"); do
	run_once io.containerd.runc.v2 "$plain" "r$i" >>"$root/runc.us"
	run_once io.containerd.vouch.v2 "$plain" "p$i" >>"$root/plain.us"
	run_once io.containerd.vouch.v2 "$signed" "c$i" >>"$root/cached.us"
	run_once io.containerd.vouch.v2 "$sbom" "b$i" >>"$root/sbomc.us"
	run_once io.containerd.vouch.v2 "$measured" "m$i" "${tpmcfg[@]}" >>"$root/tpm.us"
	# Clearing the cache makes both next starts first starts (and caches them for the next round).
	rm -rf "$root/vouch/state/cache"
	run_once io.containerd.vouch.v2 "$signed" "f$i" >>"$root/first.us"
	run_once io.containerd.vouch.v2 "$sbom" "g$i" >>"$root/sbomf.us"
done

# The 100 MB image: measured start, first start (layer caches cleared: every file hashed), and
# first start with the image baseline cleared too (the layer blob read, decompressed and hashed).
bigruns=${BENCH_BIG_RUNS:-10}
for s in bigr bigc bigh bigb; do : >"$root/$s.us"; done
for i in $(seq 1 "$bigruns"); do
	run_once io.containerd.runc.v2 "$bigimg" "gr$i" >>"$root/bigr.us"
	run_once io.containerd.vouch.v2 "$bigimg" "gc$i" "${tpmcfg[@]}" >>"$root/bigc.us"
	rm -rf "$root/vouch/state/layers"
	run_once io.containerd.vouch.v2 "$bigimg" "gh$i" "${tpmcfg[@]}" >>"$root/bigh.us"
	rm -rf "$root/vouch/state/layers" "$root/vouch/state/baselines"
	run_once io.containerd.vouch.v2 "$bigimg" "gb$i" "${tpmcfg[@]}" >>"$root/bigb.us"
done

: >"$root/verify.us"
for i in $(seq 1 "$runs"); do
	t0=$(now_ns)
	"$root/bin/vouch" verify "$REGISTRY/bench/signed@$digest" >/dev/null
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$root/verify.us"
done
# vouch verify-blob as a process: a Rekor v2 bundle with an RFC 3161 timestamp (a case of Sigstore's
# conformance suite, vendored), against its own trusted root.
case_dir=$repo/verifier/tests/data/sigstore-conformance/bundle-verify/rekor2-happy-path
: >"$root/blob.us"
for i in $(seq 1 "$runs"); do
	t0=$(now_ns)
	"$root/bin/vouch" verify-blob "$repo/verifier/tests/data/sigstore-conformance/bundle-verify/a.txt" \
		--bundle "$case_dir/bundle.sigstore.json" --trusted-root "$case_dir/trusted_root.json" \
		--certificate-identity https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main \
		--certificate-oidc-issuer https://token.actions.githubusercontent.com >/dev/null
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$root/blob.us"
done

stats() { sort -n "$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f %.1f %.1f", m/1000, a[1]/1000, a[NR]/1000}'; }
read -r rm_ rmin rmax <<<"$(stats "$root/runc.us")"
line() {
	local label=$1 file=$2 m lo hi
	read -r m lo hi <<<"$(stats "$file")"
	printf '  %-72s median %6.1f  (min %.1f, max %.1f)  ratio %.3f\n' "$label" "$m" "$lo" "$hi" "$(awk -v a="$m" -v b="$rm_" 'BEGIN { print a / b }')"
}

# Resident memory of each shim serving one running container.
shim_pid() {
	local id=$1 p
	for p in /proc/[0-9]*; do
		if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "-id $id -address $sock "; then
			echo "${p#/proc/}"
			return
		fi
	done
}
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
ctr -a "$sock" -n $ns run -d --runtime io.containerd.vouch.v2 "$signed" mem-v /bin/sleep 600
ctr -a "$sock" -n $ns run -d --runtime io.containerd.runc.v2 "$plain" mem-r /bin/sleep 600
sleep 1
vp=$(shim_pid mem-v)
rp=$(shim_pid mem-r)

# An exec's cost: /bin/true exec'd into each running container, interleaved.
exec_once() {
	local id=$1 exec_id=$2 t0 t1
	t0=$(now_ns)
	ctr -a "$sock" -n $ns task exec --exec-id "$exec_id" "$id" /bin/true
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000))
}
: >"$root/execr.us"
: >"$root/execv.us"
exec_once mem-r warm-er >/dev/null
exec_once mem-v warm-ev >/dev/null
for i in $(seq 1 "$runs"); do
	exec_once mem-r "er$i" >>"$root/execr.us"
	exec_once mem-v "ev$i" >>"$root/execv.us"
done

cat <<EOT
host: $(nproc) cores, $(uname -r), containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}')
start-to-exit of /bin/true via ctr run --rm, $runs runs each, interleaved (ms):
  io.containerd.runc.v2                    median $rm_  (min $rmin, max $rmax)
EOT
line "vouch, allow rule (+ pod_security restricted, audit; identity bound)" "$root/plain.us"
line "vouch, verify rule, cached verdict (+ pod_security restricted, audit)" "$root/cached.us"
line "vouch, verify rule, first start" "$root/first.us"
line "vouch, verify + SBOM rule, cached" "$root/sbomc.us"
line "vouch, verify + SBOM rule, first start" "$root/sbomf.us"
line "vouch, rootfs image baseline + host rule, TPM required, layers measured" "$root/tpm.us"
read -r brm _ _ <<<"$(stats "$root/bigr.us")"
read -r bcm _ _ <<<"$(stats "$root/bigc.us")"
read -r bhm _ _ <<<"$(stats "$root/bigh.us")"
read -r bbm _ _ <<<"$(stats "$root/bigb.us")"
cat <<EOT
100 MB / 5,000-file image, $bigruns runs each, interleaved (ms):
  io.containerd.runc.v2                    median $brm
  vouch, measured (caches warm)            median $bcm
  vouch, layer caches cleared (hash all)   median $bhm  (hashing $(awk -v a="$bhm" -v b="$bcm" 'BEGIN { printf "%.1f ms, %.0f%% of the start", a - b, 100 * (a - b) / a }'))
  vouch, image baseline cleared too        median $bbm  (blob read $(awk -v a="$bbm" -v b="$bhm" 'BEGIN { printf "%.1f ms", a - b }'), hashing and blob $(awk -v a="$bbm" -v b="$bcm" 'BEGIN { printf "%.0f%% of the start", 100 * (a - b) / a }'))
EOT
read -r erm ermin ermax <<<"$(stats "$root/execr.us")"
read -r evm evmin evmax <<<"$(stats "$root/execv.us")"
cat <<EOT
ctr task exec of /bin/true into a running container, $runs runs each, interleaved (ms):
  io.containerd.runc.v2                    median $erm  (min $ermin, max $ermax)
  vouch (exec judged and recorded)         median $evm  (min $evmin, max $evmax)  added $(awk -v a="$evm" -v b="$erm" 'BEGIN { printf "%.1f ms, ratio %.3f", a - b, a / b }')
EOT
read -r vm vmin vmax <<<"$(stats "$root/verify.us")"
cat <<EOT
vouch verify of a cached image (pinned digest), $runs runs: median $vm ms (min $vmin, max $vmax)
EOT
read -r bm bmin bmax <<<"$(stats "$root/blob.us")"
cat <<EOT
vouch verify-blob of a Rekor v2 + RFC 3161 bundle (a process), $runs runs: median $bm ms (min $bmin, max $bmax)
shim resident memory with one running container (kB):
  vouch  VmRSS $(rss_kb "$vp" VmRSS)  RssAnon $(rss_kb "$vp" RssAnon)  RssFile $(rss_kb "$vp" RssFile)
  runc   VmRSS $(rss_kb "$rp" VmRSS)  RssAnon $(rss_kb "$rp" RssAnon)  RssFile $(rss_kb "$rp" RssFile)
EOT
