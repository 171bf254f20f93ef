#!/usr/bin/env bash
# A tour of vouch on this machine: a private containerd and registry on loopback, a container that
# policy allows running through containerd-shim-vouch-v2, and images the gate refuses, with reasons:
# denied by rule, unsigned, tampered, with a denied license or a critical CVE in their signed SBOM.
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

say "Nothing is left behind"
echo "tasks: $(ctr -a "$sock" -n $ns tasks ls -q | wc -l), containers: $(ctr -a "$sock" -n $ns containers ls -q | wc -l), mounts under $root: $(awk -v r="$root" 'index($5, r "/") == 1' /proc/self/mountinfo | wc -l)"
