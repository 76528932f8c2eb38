#!/usr/bin/env bash
# Install the Debian packages muster needs to build and test, if any are
# missing. As root it runs apt-get; otherwise it prints the exact command
# to run and fails, changing nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libhwloc-dev uuid-dev
  libcurl4-openssl-dev libcjson-dev libsqlite3-dev libcmocka-dev libsodium-dev
  python3
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

install="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "muster needs packages that are not installed. As root, run:" >&2
  echo "  apt-get update && $install" >&2
  exit 1
fi
echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
