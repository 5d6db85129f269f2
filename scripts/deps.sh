#!/usr/bin/env bash
# Install what VoidBox needs on Debian 12, if anything is missing.
set -euo pipefail
pkgs=(build-essential musl-tools clang libyaml-dev libjansson-dev libcmocka-dev
      qemu-system-x86 busybox-static linux-source-6.1 flex bison bc libelf-dev
      libssl-dev cpio xz-utils time jq procps tmux libmicrohttpd-dev libcurl4-openssl-dev
      libarchive-dev musl bash-static ca-certificates libslirp-dev libglib2.0-dev
      docker-registry fakeroot e2fsprogs genext2fs zstd libzstd-dev apache2-utils
      skopeo umoci python3 curl lz4)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "voidbox: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
