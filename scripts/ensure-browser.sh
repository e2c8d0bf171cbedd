#!/usr/bin/env bash
# Make sure a Chromium is available to scraper: keep one that is already found; as root with apt,
# install Debian's chromium (plus Xvfb for headed tests); otherwise let Playwright download its own.
set -euo pipefail
PY="${1:-python3}"

want_xvfb="${WANT_XVFB:-0}"
if "$PY" -c "from scraper.browser import find_browser; print(find_browser())" 2>/dev/null; then
  if [ "$want_xvfb" = "1" ] && ! command -v Xvfb >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xauth >/dev/null
  fi
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "scraper: installing Chromium with apt-get" >&2
  apt-get update -qq
  pkgs="chromium fonts-dejavu-core"
  [ "$want_xvfb" = "1" ] && pkgs="$pkgs xvfb xauth"
  # Debian names it chromium; Ubuntu's chromium-browser is a snap shim, so prefer Playwright's there.
  if apt-cache show chromium >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null; then
    "$PY" -c "from scraper.browser import find_browser; print(find_browser())"
    exit 0
  fi
fi

echo "scraper: installing Playwright's Chromium" >&2
"$PY" -m playwright install chromium
"$PY" -c "from scraper.browser import find_browser; print(find_browser())"
