#!/usr/bin/env bash
# Installs the Debian packages the project needs (build, tests, peers).
# As root it runs apt-get; otherwise it prints the exact command to run.
set -eu
packages=(
  build-essential pkg-config
  libcmocka-dev libjansson-dev libgnutls28-dev libnbd-dev
  qemu-utils qemu-system-common nbdkit libnbd-bin python3-libnbd
  nbd-server nbd-client valgrind
  # The matrix (harness/): jq for drivers and tests, chromium (headless)
  # and a font for the HTML report's test (harness/tests/matrix-html.sh).
  jq chromium fonts-dejavu-core
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages; run as root:" >&2
  echo "  apt-get update && $cmd" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nbd-client's postinst may try to reach the kernel module; that failing
# is harmless here, so do not let policy-rc.d start services.
$cmd
