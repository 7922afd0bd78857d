#!/bin/sh
# Install the extra Go toolchains `mapquake model measure` can build with.
#
# Go 1.26 is the machine's own `go`; Go 1.23 (the last release with the classic
# hmap and the read/dirty sync.Map) comes from Debian's golang-1.23-go package in
# bookworm-backports and lands in /usr/lib/go-1.23. Idempotent; run as root.
set -eu

GO123=/usr/lib/go-1.23/bin/go
SOURCES=/etc/apt/sources.list.d/mapquake-bookworm-backports.sources

if [ -x "$GO123" ]; then
    echo "install-go-toolchains: $("$GO123" version) already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-go-toolchains: must run as root (apt-get install golang-1.23-go)" >&2
    exit 1
fi

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat > "$SOURCES" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    echo "install-go-toolchains: added $SOURCES"
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends golang-1.23-go
"$GO123" version
