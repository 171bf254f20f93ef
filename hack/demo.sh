#!/usr/bin/env bash
# A tour of vouch on this machine: a private containerd and registry on loopback, a container that
# policy allows running through containerd-shim-vouch-v2, and images the gate refuses, with reasons.
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

say "Nothing is left behind"
echo "tasks: $(ctr -a "$sock" -n $ns tasks ls -q | wc -l), containers: $(ctr -a "$sock" -n $ns containers ls -q | wc -l), mounts under $root: $(awk -v r="$root" 'index($5, r "/") == 1' /proc/self/mountinfo | wc -l)"
