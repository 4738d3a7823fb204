#!/usr/bin/env bash
# Builds the bwsagent Debian package with dpkg-deb from a staged tree:
#   /usr/bin/bwsagent                         the binary (amd64 or arm64, from its ELF header)
#   /lib/systemd/system/bwsagent.{service,socket}
#   /etc/bwsagent/bwsagent.yaml               the documented defaults (a conffile), when configs/ has it
#   /usr/share/bwsagent/models.tar.gz         the integrity-checked models ('bwsagent models bundle')
# Depends: the packages of the shared libraries the binary links directly
# (readelf NEEDED, resolved with dpkg -S on this machine's libraries: the
# libopencv-*406 runtime packages, libstdc++6, libgcc-s1, libc6).
#
# Usage: packaging/deb.sh BINARY MODELS_BUNDLE OUTDIR   (prints the .deb's path)
# Env:   VERSION (default: git describe), MAINTAINER
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 BINARY MODELS_BUNDLE OUTDIR" >&2; exit 2; }
BIN=$1 BUNDLE=$2 OUTDIR=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=${VERSION:-$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo 0)}
MAINTAINER=${MAINTAINER:-bwsagent maintainers <bwsagent@localhost>}

# Debian versions must start with a digit: 5ddf7ca-dirty -> 0~git5ddf7ca.dirty
debversion() {
  local v=${1#v}
  v=${v//-/.}
  case "$v" in [0-9]*) echo "$v" ;; *) echo "0~git$v" ;; esac
}

deb_arch() {
  case "$(LC_ALL=C readelf -h "$1" | sed -n 's/^ *Machine: *//p')" in
    *X86-64*) echo amd64 ;;
    AArch64) echo arm64 ;;
    *) echo "deb.sh: unsupported architecture of $1" >&2; return 1 ;;
  esac
}

# depends lists the Debian packages of the binary's NEEDED libraries. The
# names are the same on every architecture, so an arm64 binary is resolved
# against this machine's (amd64) copies of the same sonames.
depends() {
  local triplet so pkg
  triplet=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
  for so in $(LC_ALL=C readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    pkg=$(dpkg -S "*/$triplet/$so" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -n "$pkg" ] || { echo "deb.sh: no installed package provides $so (install its runtime package)" >&2; return 1; }
    case "$pkg" in
      libopencv-*) echo "$pkg (>= 4.6.0)" ;;
      libc6) echo "libc6 (>= 2.34)" ;; # cgo binaries of Go >= 1.21 need glibc 2.34
      *) echo "$pkg" ;;
    esac
  done | sort -u | paste -sd, | sed 's/,/, /g'
}

ARCH=$(deb_arch "$BIN")
DEPENDS=$(depends "$BIN")
DEBVER=$(debversion "$VERSION")
STAGE=$(mktemp -d)
chmod 0755 "$STAGE" # the tree's root becomes / on install
trap 'rm -rf "$STAGE"' EXIT

install -Dm0755 "$BIN" "$STAGE/usr/bin/bwsagent"
install -Dm0644 "$ROOT/systemd/bwsagent.service" "$STAGE/lib/systemd/system/bwsagent.service"
install -Dm0644 "$ROOT/systemd/bwsagent.socket" "$STAGE/lib/systemd/system/bwsagent.socket"
install -Dm0644 "$BUNDLE" "$STAGE/usr/share/bwsagent/models.tar.gz"
mkdir -p "$STAGE/DEBIAN"
if [ -f "$ROOT/configs/bwsagent.yaml" ]; then
  install -Dm0644 "$ROOT/configs/bwsagent.yaml" "$STAGE/etc/bwsagent/bwsagent.yaml"
  echo /etc/bwsagent/bwsagent.yaml >"$STAGE/DEBIAN/conffiles"
fi
install -Dm0644 /dev/stdin "$STAGE/usr/share/doc/bwsagent/copyright" <<'DOC'
bwsagent. The models in /usr/share/bwsagent/models.tar.gz come from the npm
registry packages pinned in the binary's manifest, with their own licences
(each package's LICENSE file is in the bundle).
DOC

SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<CONTROL
Package: bwsagent
Version: $DEBVER
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $SIZE
Depends: $DEPENDS
Recommends: systemd
Section: misc
Priority: optional
Homepage: https://github.com/bwsagent/bwsagent
Description: edge face-biometrics agent with the BWS 2 extension contract
 bwsagent finds faces, estimates head pose, makes face templates, runs
 challenge-response liveness and verifies or identifies people on the
 device's CPU, serving the BioID Web Service (BWS 2) extension contract
 on localhost. Runs as the systemd service bwsagent.service.
CONTROL

install -m0755 /dev/stdin "$STAGE/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	# One template key per device, made on the device and never shipped:
	# systemd passes it to the service (LoadCredential=).
	if [ ! -e /etc/bwsagent/template.key ]; then
		mkdir -p /etc/bwsagent
		(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >/etc/bwsagent/template.key.new \
			&& echo >>/etc/bwsagent/template.key.new \
			&& mv /etc/bwsagent/template.key.new /etc/bwsagent/template.key)
		echo "bwsagent: created /etc/bwsagent/template.key; back it up apart from /var/lib/bwsagent" >&2
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		echo "bwsagent: start it with 'systemctl enable --now bwsagent'" >&2
	fi
fi
exit 0
SCRIPT

install -m0755 /dev/stdin "$STAGE/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl stop bwsagent.service bwsagent.socket || true
fi
exit 0
SCRIPT

install -m0755 /dev/stdin "$STAGE/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
# The template key and /var/lib/bwsagent stay on purge: they are the only
# way to read a backup of the store.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
SCRIPT

mkdir -p "$OUTDIR"
OUT="$OUTDIR/bwsagent_${DEBVER}_${ARCH}.deb"
# root:root ownership without fakeroot; xz like Debian's own packages.
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
echo "$OUT"
