#!/usr/bin/env bash
# Installs the given Debian/Ubuntu packages that are not installed yet (apt-get, as root or through
# sudo). Idempotent: with everything present it does nothing and needs no privileges.
#
# Usage: scripts/apt_install.sh PACKAGE...
set -euo pipefail

missing=()
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("${pkg}")
    fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "apt_install.sh: need root or sudo to install ${missing[*]}" >&2; exit 2; }
    SUDO="sudo"
fi
echo "apt_install.sh: installing ${missing[*]}"
${SUDO} apt-get update -qq
DEBIAN_FRONTEND=noninteractive ${SUDO} apt-get install -y -qq --no-install-recommends "${missing[@]}"
