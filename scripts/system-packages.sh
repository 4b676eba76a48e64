#!/usr/bin/env bash
# Installs the Debian packages the tests run for real, when they are missing: coturn (a TURN server on
# 127.0.0.1), chromium (the browser Playwright drives) and libnss3-tools (certutil, with which the browser
# tests trust the throwaway CA of coturn's TURN over TLS). As root or with passwordless sudo it uses
# apt-get; otherwise it names the packages and the command to run, and exits 1.
# TURNSERVER, CHROMIUM and CERTUTIL name the binaries to look for (tests point them elsewhere).
set -u
turnserver=${TURNSERVER:-turnserver}
chromium=${CHROMIUM:-/usr/bin/chromium}
certutil=${CERTUTIL:-certutil}
missing=()
command -v "$turnserver" >/dev/null 2>&1 || missing+=(coturn)
[ -x "$chromium" ] || missing+=(chromium)
command -v "$certutil" >/dev/null 2>&1 || missing+=(libnss3-tools)
[ ${#missing[@]} -eq 0 ] && exit 0

packages="${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need Debian's $packages package(s) and this machine has no apt-get: install $packages with its package manager, then run make again." >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  as_root=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  echo "The tests need Debian's $packages: install them with 'sudo apt-get install $packages', then run make again." >&2
  exit 1
fi
echo "Installing Debian packages: $packages"
"${as_root[@]}" apt-get update -qq \
  && "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || { echo "apt-get could not install $packages: run 'sudo apt-get install $packages' and read its message." >&2; exit 1; }
