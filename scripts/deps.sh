#!/usr/bin/env bash
# Install what chartfs needs to build and test on Debian 12 (as root).
# Idempotent: apt is only called when a package is missing.
set -euo pipefail

pkgs=(meson ninja-build pkg-config gcc libfuse3-dev fuse3 libcurl4-openssl-dev
      libjansson-dev libarchive-dev libssl-dev libyaml-dev docker-registry
      python3-pytest attr apache2-utils unzip curl openssl valgrind clang
      libclang-rt-14-dev clang-format procps)
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
# The Debian package starts a registry on :5000 through systemd where there
# is one; tests start their own on free ports, so it is not needed.
