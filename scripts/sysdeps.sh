#!/usr/bin/env bash
# Make sure the system libraries for headless MuJoCo rendering are present (EGL, with OSMesa as the fallback).
# Installs them with apt when running as root (or with passwordless sudo); otherwise prints the command and carries
# on: simulation and training work without them, only rendering needs them.
set -euo pipefail

packages=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6)

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

if ! command -v ldconfig >/dev/null 2>&1 && [ ! -x /sbin/ldconfig ]; then
  exit 0  # not Linux (e.g. macOS): MuJoCo renders through its own backend there
fi
export PATH="$PATH:/sbin:/usr/sbin"

if have_lib 'libEGL.so.1' && have_lib 'libOSMesa.so'; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "sysdeps: headless GL libraries (EGL/OSMesa) not found and apt-get is unavailable; install your" \
       "distribution's EGL and OSMesa packages to render frames" >&2
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "sysdeps: headless GL libraries missing; run: sudo apt-get install -y ${packages[*]}" >&2
  exit 0
fi

echo "sysdeps: installing ${packages[*]} (headless rendering)"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
