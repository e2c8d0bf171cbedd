#!/usr/bin/env bash
# Make sure a Chromium is available to scraper, Xvfb for the headed tests and redis-server for the shared
# state tests: keep what is already found; as root with apt, install Debian's chromium, xvfb (+xauth) and
# redis-server (never started as a service: the tests start their own); otherwise let Playwright download
# its own Chromium (headed and Redis tests then skip, saying what is missing).
set -euo pipefail
PY="${1:-python3}"

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
updated=0
apt_install() {
  [ "$updated" = 1 ] || { apt-get update -qq && updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v Xvfb >/dev/null 2>&1 && can_apt; then
  echo "scraper: installing Xvfb with apt-get (for the headed tests)" >&2
  apt_install xvfb xauth || echo "scraper: could not install Xvfb; headed tests will skip" >&2
fi

if ! command -v redis-server >/dev/null 2>&1 && can_apt; then
  echo "scraper: installing redis-server with apt-get (for the shared state tests)" >&2
  # policy-rc.d 101: the package's service is not started; the tests run a private redis-server each
  made=0
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made=1; }
  apt_install redis-server || echo "scraper: could not install redis-server; the shared state tests will skip" >&2
  [ "$made" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi

if "$PY" -c "from scraper.browser import find_browser; print(find_browser())" 2>/dev/null; then
  exit 0
fi

if can_apt; then
  echo "scraper: installing Chromium with apt-get" >&2
  # Debian names it chromium; Ubuntu's chromium-browser is a snap shim, so prefer Playwright's there.
  if { [ "$updated" = 1 ] || { apt-get update -qq && updated=1; }; } && apt-cache show chromium >/dev/null 2>&1 \
      && apt_install chromium fonts-dejavu-core; then
    "$PY" -c "from scraper.browser import find_browser; print(find_browser())"
    exit 0
  fi
fi

echo "scraper: installing Playwright's Chromium" >&2
"$PY" -m playwright install chromium
"$PY" -c "from scraper.browser import find_browser; print(find_browser())"
