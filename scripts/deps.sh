#!/bin/sh
# Installs the Debian packages dime needs to build and test, if missing.
# Run by `make demo` and `make check`; needs root (or sudo) only when
# something is missing.
set -e
need="gcc make libc6-dev libmimalloc-dev libcriterion-dev criu"
# dime sweep's plots, and the workloads/ scripts (their tests run in make check).
need="$need gnuplot-nox redis-server redis-tools memcached libmemcached-tools sqlite3 xz-utils python3"
missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "dime: installing Debian packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
	command -v sudo >/dev/null || { echo "dime: run as root to install:$missing" >&2; exit 1; }
fi
export DEBIAN_FRONTEND=noninteractive
${SUDO:-} apt-get update -qq
${SUDO:-} apt-get install -y -qq $missing >/dev/null
