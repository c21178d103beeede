#!/usr/bin/env bash
# Installs what the tests need (Debian packages when root, then pip) and runs them.
set -euo pipefail
cd "$(dirname "$0")"
debs=(flite espeak-ng chromium ffmpeg)
missing=()
for deb in "${debs[@]}"; do dpkg -s "$deb" >/dev/null 2>&1 || missing+=("$deb"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "not root: cannot apt-get install ${missing[*]}; tests that need them skip and say why" >&2
  fi
fi
python -m pip install -q -r requirements.txt -r requirements-dev.txt
ruff check .
python -m pytest "$@"
