#!/usr/bin/env bash
# Put the Sigstore project's JavaScript libraries at .tools/sigstore
# (gitignored, never committed): the tests make and check cosign bundles
# with them, an implementation chartfs did not write. Versions are pinned to
# the last majors that run on Debian 12's Node.js 20. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.tools/sigstore"
pkgs=(@sigstore/sign@4.1.1 @sigstore/verify@3.1.1 @sigstore/bundle@4.0.0)
stamp="$dest/.installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pkgs[*]}" ]; then
	exit 0
fi
mkdir -p "$dest"
[ -f "$dest/package.json" ] || echo '{"name":"chartfs-test-tools","private":true}' >"$dest/package.json"
(cd "$dest" && npm install --silent --no-audit --no-fund "${pkgs[@]}" >/dev/null)
echo "${pkgs[*]}" >"$stamp"
echo "sigstore.sh: $dest (${pkgs[*]})"
