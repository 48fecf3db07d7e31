#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks: tesseract, poppler, Chromium (browser tests), uv and the
# virtualenv from uv.lock. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
command -v tesseract >/dev/null || missing+=(tesseract-ocr)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
if [ "${SCRIPTLABEL_BROWSER:-1}" = "1" ]; then
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v uv >/dev/null; then
  python3 -m pip install --quiet uv 2>/dev/null || python3 -m pip install --quiet --break-system-packages uv
fi
uv sync --frozen --compile-bytecode --quiet
