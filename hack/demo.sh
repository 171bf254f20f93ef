#!/usr/bin/env bash
# A tour of vouch on this machine: a private containerd, registry and software TPM on loopback, a
# container that policy allows running through containerd-shim-vouch-v2, and images the gate refuses,
# with reasons: denied by rule, unsigned, tampered, with a denied license or a critical CVE in their
# signed SBOM, a file changed on the node after pull, a privileged container; then the TPM-quoted,
# signed attestation log of every decision, shown and verified.
# Run as root on Debian 12. Everything it starts is stopped (by PID) and removed at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
. "$here/lib.sh"

"$here/setup.sh"
target=${CARGO_TARGET_DIR:-$repo/target}

root=$(mktemp -d /tmp/vouch-demo.XXXXXX)
sock=$root/c.sock
ns=demo
REGISTRY_PID=
SWTPM_PID=
cleanup() { teardown "$root" "$ns"; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

say "A private registry on loopback"
start_registry "$root"
reg=$REGISTRY
echo "registry at $reg"

say "Busybox images built offline and pushed"
build_busybox_layout "$root/layout" latest /bin/sh
for repo_name in team/app debug/busybox; do
	skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:latest" "docker://$reg/$repo_name:v1"
	echo "pushed $reg/$repo_name:v1"
done

say "A private containerd with the vouch runtime"
mkdir -p "$root/bin"
cp "$target/debug/containerd-shim-vouch-v2" "$target/debug/vouch" "$root/bin/"
write_configs "$root"
# The loopback registry speaks plain HTTP. Denials are not cached here, so that an image signed a
# moment after a refusal runs at once (a node keeps them deny_ttl_s, 60 s by default).
printf '[registry]\nplain_http = ["%s"]\n[cache]\ndeny_ttl_s = 0\n' "$reg" >>"$root/vouch/config.toml"
export VOUCH_CONFIG=$root/vouch/config.toml
start_containerd "$root" "$root/bin"
for repo_name in team/app debug/busybox; do
	ctr -a "$sock" -n $ns images pull --plain-http "$reg/$repo_name:v1" >/dev/null
done
ctr -a "$sock" -n $ns images ls

say "The node policy ($root/vouch/policy.toml)"
cat >"$root/vouch/policy.toml" <<EOT
version = 1
default = "deny"
mode = "enforce"
sandbox = "exempt"

[[rule]]
name = "team-images"
images = ["$reg/team/**"]
action = "allow"

[[rule]]
name = "no-debug-images"
images = ["$reg/debug/**"]
action = "deny"
EOT
cat "$root/vouch/policy.toml"

run() { timeout -k 5 30 ctr -a "$sock" -n $ns run --rm --runtime io.containerd.vouch.v2 "$@"; }

say "An allowed image runs"
show run "$reg/team/app:v1" demo-ok echo "hello from a container vouch allowed"

say "A denied image is refused before runc ever sees it"
show run "$reg/debug/busybox:v1" demo-denied echo never || echo "(exit code $?)"

say "An image no rule matches falls to the default (deny)"
skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:latest" "docker://$reg/other/tool:v1"
ctr -a "$sock" -n $ns images pull --plain-http "$reg/other/tool:v1" >/dev/null
show run "$reg/other/tool:v1" demo-default echo never || echo "(exit code $?)"

say "Audit mode: the same denial is logged, and the container runs"
sed -i 's/^mode = "enforce"/mode = "audit"/' "$root/vouch/policy.toml"
show run "$reg/debug/busybox:v1" demo-audit echo "ran under audit"
echo "containerd's log, from the shim:"
grep -o 'audit: vouch: denied.*allowed by audit mode)' "$root/containerd.log" | tail -1 | sed 's/\\"/"/g'

say "A broken policy refuses every start, naming the file and line"
printf 'version = 1\ndefault = "maybe"\n' >"$root/vouch/policy.toml"
show run "$reg/team/app:v1" demo-broken echo never || echo "(exit code $?)"

say "Signatures: a key made by vouch keygen (cosign's format)"
export COSIGN_PASSWORD=demo-password
mkdir -p "$root/keys"
show "$root/bin/vouch" keygen "$root/keys/release"
head -c 200 "$root/keys/release.key" | head -n 2
echo "..."

say "A policy that requires a signature by that key for team images"
cat >"$root/vouch/policy.toml" <<EOT
version = 1
default = "deny"

[[rule]]
name = "signed-team-images"
images = ["$reg/team/**"]
action = "verify"
[[rule.authority]]
name = "release"
key = "$root/keys/release.pub"
EOT
cat "$root/vouch/policy.toml"

say "Before signing: refused"
show run "$reg/team/app:v1" demo-unsigned echo never || echo "(exit code $?)"

say "vouch sign pushes a cosign signature to the registry; the signed image runs"
show "$root/bin/vouch" sign "$reg/team/app:v1" --key "$root/keys/release.key"
show "$root/bin/vouch" verify "$reg/team/app:v1" || echo "(vouch verify exit code $?)"
show run "$reg/team/app:v1" demo-signed echo "hello from a signed image"

say "An unsigned image in the same repository tree is refused"
skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:latest" "docker://$reg/team/unsigned:v1"
ctr -a "$sock" -n $ns images pull --plain-http "$reg/team/unsigned:v1" >/dev/null
show run "$reg/team/unsigned:v1" demo-unsigned2 echo never || echo "(exit code $?)"

say "A tampered tag: team/app:v1 now points at other content, the signature names the old digest"
build_busybox_layout "$root/layout" tampered /bin/true
skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:tampered" "docker://$reg/team/app:v1"
ctr -a "$sock" -n $ns images pull --plain-http "$reg/team/app:v1" >/dev/null
show run "$reg/team/app:v1" demo-tampered echo never || echo "(exit code $?)"
show "$root/bin/vouch" verify "$reg/team/app:v1" || echo "(vouch verify exit code $?)"

say "SBOMs: vouch sbom inventories an image from its OCI layout (dpkg, apk, Python and npm metadata, every file's SHA-256)"
add_debian_packages "$root/layout" latest shop Expat
add_debian_packages "$root/layout" latest legacy GPL-3
for t in shop legacy; do
	skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:$t" "docker://$reg/team/$t:v1"
	ctr -a "$sock" -n $ns images pull --plain-http "$reg/team/$t:v1" >/dev/null
	"$root/bin/vouch" sign "$reg/team/$t:v1" --key "$root/keys/release.key" >/dev/null
done
show "$root/bin/vouch" sbom "$root/layout" --ref shop -o spdx-json --author "Organization: Demo Release Team" --file "$root/shop.spdx.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [print("  %-12s %-16s %-24s %s" % (p["name"][:12], p.get("versionInfo","")[:16], p.get("licenseConcluded",""), p.get("supplier",""))) for p in d["packages"]]' "$root/shop.spdx.json"
"$root/bin/vouch" sbom "$root/layout" --ref legacy -o spdx-json --author "Organization: Demo Release Team" --file "$root/legacy.spdx.json"

say "vouch attest signs each SBOM into a cosign attestation (.att) beside the image"
show "$root/bin/vouch" attest "$reg/team/shop:v1" --predicate "$root/shop.spdx.json" --type spdxjson --key "$root/keys/release.key"
show "$root/bin/vouch" attest "$reg/team/legacy:v1" --predicate "$root/legacy.spdx.json" --type spdxjson --key "$root/keys/release.key"

say "A policy that also requires a signed SBOM meeting NTIA's minimum fields, without GPL-3.0 or critical CVEs"
cat >"$root/vouch/policy.toml" <<EOT
version = 1
default = "deny"

[[rule]]
name = "team-sbom"
images = ["$reg/team/**"]
action = "verify"
[[rule.authority]]
name = "release"
key = "$root/keys/release.pub"
[rule.sbom]
require = true
min_fields = ["supplier", "name", "version", "purl", "relationships", "author", "timestamp"]
deny_licenses = ["GPL-3.0-only", "GPL-3.0-or-later", "AGPL-*"]
deny_severity = "critical"
max_age_days = 90
EOT
sed -n '/\[rule.sbom\]/,$p' "$root/vouch/policy.toml"

say "The image whose SBOM meets it runs"
show run "$reg/team/shop:v1" demo-sbom-ok echo "hello from an image with a signed SBOM"

say "The image with a GPL-3.0 package is refused, the license and package named"
show run "$reg/team/legacy:v1" demo-sbom-license echo never || echo "(exit code $?)"

say "The first image again, now with a signed vulnerability report (a Trivy scan, cosign's vuln predicate) naming a critical CVE"
cat >"$root/shop.vuln.json" <<EOT
{"invocation": {"parameters": null, "uri": "", "event_id": "", "builder.id": ""},
 "scanner": {"uri": "pkg:github/aquasecurity/trivy@0.50.0", "version": "0.50.0", "db": {"uri": "", "version": ""},
   "result": {"SchemaVersion": 2, "ArtifactName": "$reg/team/shop:v1", "Results": [{"Target": "debian 12", "Vulnerabilities": [
     {"VulnerabilityID": "CVE-2021-44228", "PkgName": "libdemo1", "InstalledVersion": "1.2.3-1", "Severity": "CRITICAL"}]}]}},
 "metadata": {"scanStartedOn": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "scanFinishedOn": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}}
EOT
show "$root/bin/vouch" attest "$reg/team/shop:v1" --predicate "$root/shop.vuln.json" --type vuln --key "$root/keys/release.key"
rm -rf "$root/vouch/state/cache"
show run "$reg/team/shop:v1" demo-sbom-cve echo never || echo "(exit code $?)"

say "A signed OpenVEX statement (not_affected) clears the CVE for this image; it runs again"
shop_digest=$(ctr -a "$sock" -n $ns images ls | awk -v r="$reg/team/shop:v1" '$1 == r { print $3 }')
cat >"$root/shop.openvex.json" <<EOT
{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/demo-1", "author": "Demo Security Team",
 "timestamp": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "version": 1,
 "statements": [{"vulnerability": {"name": "CVE-2021-44228"}, "products": [{"@id": "pkg:oci/shop@${shop_digest/:/%3A}"}],
   "status": "not_affected", "justification": "vulnerable_code_not_present"}]}
EOT
show "$root/bin/vouch" attest "$reg/team/shop:v1" --predicate "$root/shop.openvex.json" --type openvex --key "$root/keys/release.key"
rm -rf "$root/vouch/state/cache"
show run "$reg/team/shop:v1" demo-sbom-vex echo "hello again: the CVE does not affect this image"
show "$root/bin/vouch" verify "$reg/team/legacy:v1" || echo "(vouch verify exit code $?)"

say "Measurement and attestation: a software TPM (swtpm) on loopback, PCR 23, every decision recorded"
start_swtpm "$root"
echo "swtpm at $SWTPM_TCTI"
cat >>"$root/vouch/config.toml" <<EOT
[tpm]
mode = "required"
tcti = "$SWTPM_TCTI"
pcr = 23
EOT
sed -n '/\[tpm\]/,$p' "$root/vouch/config.toml"
cat >"$root/vouch/policy.toml" <<EOT
version = 1
default = "deny"

[[rule]]
name = "measured"
images = ["$reg/team/**"]
action = "allow"
[rule.rootfs]
baseline = "image"      # the unpacked layers must equal the image's layer blobs
[rule.host]
allow_privileged = false
EOT
sed -n '/\[\[rule\]\]/,$p' "$root/vouch/policy.toml"

say "An image with /etc/motd runs; its layers are hashed once and compared with the layer blobs the manifest pins"
add_file "$root/layout" latest motd etc/motd "Welcome to the demo image"
skopeo copy --quiet --dest-tls-verify=false "oci:$root/layout:motd" "docker://$reg/team/motd:v1"
ctr -a "$sock" -n $ns images pull --plain-http "$reg/team/motd:v1" >/dev/null
show run "$reg/team/motd:v1" demo-measured-1 cat /etc/motd
motd_digest=$(ctr -a "$sock" -n $ns images ls | awk -v r="$reg/team/motd:v1" '$1 == r { print $3 }')
show "$root/bin/vouch" verify "$reg/team/motd@$motd_digest" --measure --containerd "$sock" --containerd-namespace $ns

say "Someone with root on the node edits a file inside the image's unpacked layer"
motd=$(find "$root/root/io.containerd.snapshotter.v1.overlayfs/snapshots" -path '*/fs/etc/motd' | head -1)
show sed -i 's/Welcome/Pwned/' "$motd"
show run "$reg/team/motd:v1" demo-measured-2 cat /etc/motd || echo "(exit code $?)"

say "A privileged container is refused by [rule.host]"
show ctr -a "$sock" -n $ns run --rm --privileged --runtime io.containerd.vouch.v2 "$reg/team/app:v1" demo-priv true || echo "(exit code $?)"

say "The attestation log: one DSSE-signed, hash-chained in-toto record per decision, each quoted by the TPM"
show "$root/bin/vouch" attestation show "$root/vouch/state/attestations.jsonl"
show "$root/bin/vouch" attestation verify "$root/vouch/state/attestations.jsonl" \
	--node-key "$root/vouch/state/attestation/node.pub" \
	--ak "$root/vouch/state/tpm/ak.pem" \
	--event-log "$root/vouch/state/tpm/events.jsonl"

say "The last record's quote, checked by tpm2-tools (tpm2_checkquote), independently of vouch"
tail -1 "$root/vouch/state/attestations.jsonl" | jq -r .payload | base64 -d | jq .predicate.tpm >"$root/tpm.json"
jq -r .ak_pem "$root/tpm.json" >"$root/ak.pem"
jq -r .attest "$root/tpm.json" | base64 -d >"$root/attest.bin"
jq -r .signature "$root/tpm.json" | base64 -d >"$root/sig.bin"
jq -r .pcr_value "$root/tpm.json" | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().strip()))' >"$root/pcr.bin"
show tpm2_checkquote -u "$root/ak.pem" -m "$root/attest.bin" -s "$root/sig.bin" -g sha256 \
	-q "$(jq -r .event_digest "$root/tpm.json")" -f "$root/pcr.bin" -l sha256:23

say "Nothing is left behind"
echo "tasks: $(ctr -a "$sock" -n $ns tasks ls -q | wc -l), containers: $(ctr -a "$sock" -n $ns containers ls -q | wc -l), mounts under $root: $(awk -v r="$root" 'index($5, r "/") == 1' /proc/self/mountinfo | wc -l)"
