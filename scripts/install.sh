#!/usr/bin/env bash
# Installs everything logharbor needs on a fresh Debian machine: system packages, a virtualenv in
# .venv with the locked Python packages (requirements/lock.txt), and (with --test) the test-only peers.
# Usage: scripts/install.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

apt_pkgs=(nginx-light ripgrep)
# the compiled record path (scripts/build_native.py): the C compiler and the Python headers
apt_pkgs+=(gcc libc6-dev python3-dev)
if [ $want_test = 1 ]; then apt_pkgs+=(rsyslog rsyslog-openssl postgresql); fi
# tests/record/test_dialects.py runs Logback with logstash-logback-encoder (Debian's jars, the JDK's javac)
if [ $want_test = 1 ]; then apt_pkgs+=(liblogback-java liblogstash-logback-encoder-java); fi
if [ $want_test = 1 ] && ! command -v javac >/dev/null 2>&1; then apt_pkgs+=(default-jdk-headless); fi
# tests/clients/test_go_loggers.py builds zap, zerolog and logrus from Debian's Go packages (GOPATH mode)
if [ $want_test = 1 ]; then
  apt_pkgs+=(golang-go golang-go.uber-zap-dev golang-github-rs-zerolog-dev golang-github-sirupsen-logrus-dev
             golang-github-pkg-errors-dev)
fi
# the web UI is built with node (v20.19+); its browser tests drive Debian's chromium
command -v npm >/dev/null 2>&1 || apt_pkgs+=(nodejs npm)
if [ $want_test = 1 ]; then apt_pkgs+=(chromium); fi
# tests/clients: rsyslog's Elasticsearch output, and the libraries syslog-ng needs (syslog-ng itself
# conflicts with rsyslog as a package, so it is unpacked below, not installed)
if [ $want_test = 1 ]; then
  apt_pkgs+=(rsyslog-elasticsearch libivykis0 libnet1 libpcre3 libwrap0 libjson-c5 libglib2.0-0 libcurl4
             libcap2 libssl3 libsystemd0)
fi
# installed means dpkg's Status is "install ok installed": a package removed but not purged still
# answers `dpkg -s` with status "deinstall ok config-files", and its files are gone
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -qx 'install ok installed'; }
missing=()
for p in "${apt_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "install: apt packages ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "install: please install with apt: ${missing[*]} (not root, skipping)" >&2
  fi
fi

# syslog-ng as a test peer: Debian's syslog-ng-core, -scl (the stock elasticsearch-http() block) and
# -mod-http unpacked into .peers/syslog-ng (apt-get download + dpkg -x), run from there by
# tests/clients/test_syslog_daemons.py
sng_dir=.peers/syslog-ng
sng_pkgs=(syslog-ng-core syslog-ng-scl syslog-ng-mod-http)
if [ $want_test = 1 ] && [ ! -x "$sng_dir/usr/sbin/syslog-ng" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "install: unpacking ${sng_pkgs[*]} into $sng_dir"
    sng_tmp=$(mktemp -d)
    (cd "$sng_tmp" && apt-get download -qq "${sng_pkgs[@]}" >/dev/null 2>&1) \
      || { apt-get update -qq >/dev/null && (cd "$sng_tmp" && apt-get download -qq "${sng_pkgs[@]}" >/dev/null); }
    mkdir -p "$sng_dir"
    for deb in "$sng_tmp"/*.deb; do dpkg -x "$deb" "$sng_dir"; done
    rm -rf "$sng_tmp"
  else
    echo "install: apt-get not found: syslog-ng tests will be skipped" >&2
  fi
fi

py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# `pip install logharbor` alone is the sdk; the server extra brings the agent, the cli and everything
# the demo runs, the test extra adds the test tools. Every version comes from requirements/lock.txt
# (written by scripts/lock.py), so a fresh machine gets the set the suite passed with.
extra=server,native
[ $want_test = 1 ] && extra=test
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/lock.txt -e ".[$extra]"

# the compiled record path: the C normaliser (src/logharbor/_native/rowc.c) and the record modules
# compiled with Cython, with gcc, into src/logharbor/_native (scripts/build_native.py); skipped while
# the build matches the sources. When it cannot be built (no compiler, no headers) the server runs
# the same code in Python and says so in its log.
if ! .venv/bin/python -c 'from logharbor.server.ingest import decoder as d; raise SystemExit(d.PATH != "rowc")' \
    2>/dev/null; then
  echo "install: compiling the record path (scripts/build_native.py)"
  if ! .venv/bin/python scripts/build_native.py >.venv/build_native.log 2>&1; then
    echo "install: the compiled record path is not built: $( (grep 'build_native:' .venv/build_native.log || tail -1 .venv/build_native.log) | tail -1)" >&2
    echo "install: the server runs the Python record path (full output in .venv/build_native.log)" >&2
  fi
fi

# web UI: `npm ci && npm run build` in ui/ into src/logharbor/server/ui/dist/, skipped when the
# sources hash to the same value as the last build (so a second run costs nothing)
ui_stamp=src/logharbor/server/ui/dist/.build-hash
ui_hash=none
[ -d ui ] && ui_hash=$(find ui -path ui/node_modules -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ -f ui/index.html ] && [ -f ui/package-lock.json ] && [ "$(cat "$ui_stamp" 2>/dev/null)" != "$ui_hash" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "install: building the web UI (ui/)"
    (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent) >/dev/null
    echo "$ui_hash" > "$ui_stamp"
  else
    echo "install: npm not found: the web UI is not built (install nodejs and npm)" >&2
  fi
fi
# tests/ui/test_docs.py runs tsc --noEmit and vitest from ui/node_modules: --test installs them
# even when the build above was skipped (a current dist/ built elsewhere)
if [ $want_test = 1 ] && [ -f ui/package-lock.json ] && [ ! -x ui/node_modules/.bin/vitest ]; then
  if command -v npm >/dev/null 2>&1; then
    (cd ui && npm ci --no-audit --no-fund --loglevel=error) >/dev/null
  else
    echo "install: npm not found: the web UI's type check and unit tests cannot run" >&2
  fi
fi
# test clients: the real Node.js loggers and shippers the suite runs (tests/clients/package.json),
# installed from the lockfile; skipped when the lockfile has not changed since the last install
if [ $want_test = 1 ] && [ -f tests/clients/package-lock.json ]; then
  clients_stamp=tests/clients/node_modules/.lock-hash
  clients_hash=$(sha256sum tests/clients/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$clients_stamp" 2>/dev/null)" != "$clients_hash" ]; then
    if command -v npm >/dev/null 2>&1; then
      echo "install: test clients (tests/clients/)"
      (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error) >/dev/null
      echo "$clients_hash" > "$clients_stamp"
    else
      echo "install: npm not found: tests/clients is not installed" >&2
    fi
  fi
fi
echo "install: ready (.venv)"
