#!/usr/bin/env bash
# Make sure the system libraries for headless MuJoCo rendering are present (EGL, with OSMesa as the fallback), and
# Chromium for the browser check of the built book.
# Installs them with apt when running as root (or with passwordless sudo); otherwise prints the command and carries
# on: simulation and training work without them, only rendering needs them.
set -euo pipefail

packages=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6)

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

if ! command -v ldconfig >/dev/null 2>&1 && [ ! -x /sbin/ldconfig ]; then
  exit 0  # not Linux (e.g. macOS): MuJoCo renders through its own backend there
fi
export PATH="$PATH:/sbin:/usr/sbin"

# Chromium opens every page of the built book in the browser check of `make test` (skipped, with a message, where it
# cannot be installed).
if have_lib 'libEGL.so.1' && have_lib 'libOSMesa.so'; then
  packages=()
fi
if ! command -v chromium >/dev/null 2>&1; then
  packages+=(chromium)
fi
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "sysdeps: ${packages[*]} not found and apt-get is unavailable; install your distribution's EGL and OSMesa" \
       "packages to render frames, and Chromium for the browser check of the book" >&2
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "sysdeps: system packages missing; run: sudo apt-get install -y ${packages[*]}" >&2
  exit 0
fi

echo "sysdeps: installing ${packages[*]} (headless rendering, the book's browser check)"
"${sudo[@]}" apt-get update -qq
gl=()
for p in "${packages[@]}"; do [ "$p" = chromium ] || gl+=("$p"); done
if [ ${#gl[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${gl[@]}" >/dev/null
fi
if [[ " ${packages[*]} " == *" chromium "* ]]; then
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || echo "sysdeps: could not install chromium; the browser check of the book will be skipped" >&2
fi
