#!/usr/bin/env bash
# Make sure the browser tests have Chromium and ChromeDriver: Debian's packages, /usr/bin/chromium and
# /usr/bin/chromedriver. Playwright drives that Chromium; its own `playwright install` would download a
# browser build, which a machine that reaches only the package registries cannot do.
# Installs them with apt-get when we are root (CI, containers); otherwise says how, and fails.
set -u

chromium=${CHROMIUM:-/usr/bin/chromium}
driver=${CHROMEDRIVER:-/usr/bin/chromedriver}

if [ -x "$chromium" ] && [ -x "$driver" ]; then
  exit 0
fi

missing=""
[ -x "$chromium" ] || missing="$missing $chromium"
[ -x "$driver" ] || missing="$missing $driver"

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: missing:$missing; installing Debian's chromium and chromium-driver with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # The lock timeout waits for another apt run (an unattended upgrade, say) instead of failing at once.
  if apt-get -o DPkg::Lock::Timeout=300 update -q \
    && apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends chromium chromium-driver; then
    if [ -x "$chromium" ] && [ -x "$driver" ]; then
      echo "ensure_chromium: installed $("$chromium" --version 2>/dev/null)"
      exit 0
    fi
    echo "ensure_chromium: apt-get finished but$missing is still missing." >&2
  fi
  echo "ensure_chromium: could not install Chromium (see apt-get's messages above)." >&2
  echo "  How to fix: run \`apt-get update && apt-get install -y chromium chromium-driver\` and read its error," >&2
  echo "  or set CHROMIUM and CHROMEDRIVER to the paths of a Chromium and ChromeDriver you have." >&2
  exit 1
fi

if [ -x "$chromium" ]; then
  # Playwright drives Chromium directly; ChromeDriver is only for WebDriver-based tools.
  echo "ensure_chromium: $driver is missing; the browser tests use $chromium directly, so going on." >&2
  exit 0
fi
echo "ensure_chromium: the browser tests need Chromium (and ChromeDriver); missing:$missing" >&2
echo "  How to fix: install them, then run make test again:" >&2
echo "    Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2
echo "    (Ubuntu's chromium is a snap: use chromium-browser/chromium-chromedriver, or set CHROMIUM and" >&2
echo "    CHROMEDRIVER to the paths of the browser and driver you have.)" >&2
exit 1
