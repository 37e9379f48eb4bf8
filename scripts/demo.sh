#!/usr/bin/env bash
# The demo, as root on Debian 12: install, build, start a local registry
# with the example charts, and mount it.
#   scripts/demo.sh [MOUNTPOINT]     (default /mnt/registry)
# Idempotent: a registry it started before is reused, charts already pushed
# are not pushed again, and the mount point is remounted. BUILD_DIR picks
# another build directory (see build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mnt=${1:-/mnt/registry}
state=/var/tmp/chartfs-demo
helm=$root/.tools/helm4

scripts/deps.sh
scripts/helm.sh
scripts/build.sh

mkdir -p "$state"
# helm's own config and cache stay out of the user's.
export HELM_CONFIG_HOME=$state/helm/config HELM_CACHE_HOME=$state/helm/cache \
	HELM_DATA_HOME=$state/helm/data

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

answers() { curl -fsS -o /dev/null "http://127.0.0.1:$1/v2/" 2>/dev/null; }

# --- the registry: reuse ours if it still runs, else the first free port from 5000
port=
if [ -f "$state/registry.pid" ] && kill -0 "$(cat "$state/registry.pid")" 2>/dev/null &&
	[ -f "$state/registry.port" ] && answers "$(cat "$state/registry.port")"; then
	port=$(cat "$state/registry.port")
	echo "registry: already running on 127.0.0.1:$port (pid $(cat "$state/registry.pid"))"
else
	port=5000
	while listening "$port"; do port=$((port + 1)); done
	cat >"$state/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $state/data}, delete: {enabled: true}}
http: {addr: '127.0.0.1:$port'}
EOF
	nohup /usr/bin/docker-registry serve "$state/registry.yml" >>"$state/registry.log" 2>&1 &
	echo $! >"$state/registry.pid"
	echo "$port" >"$state/registry.port"
	for _ in $(seq 100); do answers "$port" && break; sleep 0.1; done
	answers "$port" || { echo "registry did not start, see $state/registry.log" >&2; exit 1; }
	echo "registry: started on 127.0.0.1:$port (pid $(cat "$state/registry.pid"))"
fi
reg=127.0.0.1:$port

# --- the example charts, packaged and pushed by helm v4 (once)
has_tag() { # repository, tag
	curl -fsS "http://$reg/v2/$1/tags/list" 2>/dev/null | grep -q "\"$2\""
}
push_chart() { # chart source dir, namespace
	local name version
	name=$(sed -n 's/^name: *//p' "$1/Chart.yaml")
	version=$(sed -n 's/^version: *//p' "$1/Chart.yaml")
	has_tag "$2/$name" "$version" && return 0
	"$helm" package "$1" -d "$state/packages" >/dev/null
	"$helm" push "$state/packages/$name-$version.tgz" "oci://$reg/$2" --plain-http 2>&1 |
		sed -n 's/^Pushed: /pushed: /p'
}
push_chart tests/charts/helm-oci-test-0.1.0 charts/test
push_chart tests/charts/helm-oci-test-0.2.0 charts/test
push_chart tests/charts/web charts/test
push_chart tests/charts/web other/apps
push_chart tests/charts/helm-oci-test-0.2.0 other/apps

# A plain OCI image too (not a chart): it shows as an empty tag directory.
push_blob() { # repository, file -> prints the digest
	local digest loc sep
	digest=sha256:$(sha256sum "$2" | cut -d' ' -f1)
	loc=$(curl -fsS -X POST -D - -o /dev/null "http://$reg/v2/$1/blobs/uploads/" |
		tr -d '\r' | sed -n 's/^[Ll]ocation: *//p')
	case $loc in http*) ;; *) loc=http://$reg$loc ;; esac
	case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
	curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$2" \
		"$loc${sep}digest=$digest" -o /dev/null
	echo "$digest"
}
if ! has_tag other/image latest; then
	printf '{}' >"$state/config.json"
	printf 'not a chart' >"$state/layer.bin"
	cfg=$(push_blob other/image "$state/config.json")
	layer=$(push_blob other/image "$state/layer.bin")
	curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
		"http://$reg/v2/other/image/manifests/latest" -o /dev/null --data-binary @- <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$cfg","size":2},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$layer","size":11}],
 "annotations":{"org.opencontainers.image.created":"2024-01-02T03:04:05Z"}}
EOF
	echo "pushed: $reg/other/image:latest (an OCI image, not a chart)"
fi

# --- the mount
mkdir -p "$mnt"
if mountpoint -q "$mnt" || grep -q " $mnt fuse" /proc/mounts; then
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt"
fi
"$root/${BUILD_DIR:-build}/fs/chartfs" -o plain_http "$reg" "$mnt"

cat <<EOF

chartfs: $reg mounted on $mnt

Try:
  ls $mnt
  ls $mnt/charts/test/helm-oci-test
  cat $mnt/charts/test/helm-oci-test/0.2.0/Chart.yaml
  grep -rl 'kind: Deployment' $mnt/charts
  diff -r $mnt/charts/test/helm-oci-test/0.1.0 $mnt/charts/test/helm-oci-test/0.2.0
  $helm template r $mnt/charts/test/web/1.0.0
  getfattr -d $mnt/charts/test/helm-oci-test/0.2.0
  ls -la $mnt/other/image/latest          # an image, not a chart: empty
  sha256sum $mnt/charts/test/helm-oci-test/helm-oci-test-0.2.0.tgz

Stop:
  fusermount3 -u $mnt
  kill \$(cat $state/registry.pid)         # registry data stays in $state/data
EOF
