#!/usr/bin/env bash
# Installs what the tests need (Debian packages when root, then pip) and runs them.
set -euo pipefail
cd "$(dirname "$0")"
debs=(flite espeak-ng chromium ffmpeg
      hershey-fonts-data fonts-breip fonts-bwht fonts-comic-neue fonts-dancingscript fonts-dkg-handwriting
      fonts-dustin fonts-ecolier-court fonts-humor-sans fonts-kaushanscript fonts-kristi fonts-leckerli-one
      fonts-lobster fonts-okolaks fonts-rufscript fonts-sjfonts fonts-staypuft fonts-tlwg-purisa-ttf
      fonts-tomsontalks)  # fonts the digits builder writes with (fusion.data.handwriting.DEBIAN_FONT_PACKAGES)
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
