#!/usr/bin/env bash
# Install what chartfs needs to build, test, demo and benchmark on Debian 12
# (as root). Idempotent and quiet: apt is only called when a package is missing.
set -euo pipefail

pkgs=(
	meson ninja-build pkg-config gcc                      # build
	libfuse3-dev fuse3 libcurl4-openssl-dev libjansson-dev # libraries
	libarchive-dev libssl-dev libyaml-dev libyaml-0-2 zlib1g-dev libgpgme-dev
	docker-registry python3-pytest attr gnupg             # tests: registry, pytest, getfattr, helm --sign
	python3-cryptography                                  # tests: an independent cosign signer
	apache2-utils unzip curl openssl procps               # htpasswd, helm unpack, demo
	rsync                                                 # tests: the copy tools users run
	valgrind clang libclang-rt-14-dev clang-format        # sanitizers, style
)
# node and npm (for helm, see helm.sh) usually come with the machine.
command -v npm >/dev/null || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Where Debian's docker-registry package runs a registry on :5000 through
# systemd, it stays: tests start their own on free ports, the demo picks the
# first free port from 5000.
[ -e /dev/fuse ] || echo "deps: warning: /dev/fuse is missing; mounts will fail" >&2
echo "deps: ok"
