#!/usr/bin/env bash
# Cross-builds bwsagent for linux/arm64 (Raspberry Pi class, Debian 12) and
# runs it under qemu-user, following ../shared/arm64.md:
#   - an arm64 sysroot made of extracted .debs in a cache outside the repo
#     (installing libopencv-dev:arm64 would remove the amd64 OpenCV — never do);
#   - the amd64 cross toolchain (crossbuild-essential-arm64) and qemu-user-static;
#   - `bwsagent version`, the pure-Go packages' tests, and cgo smoke runs.
#
# Usage: scripts/arm64.sh [sysroot|build|test|all]   (default: all)
# Env:   BWSAGENT_ARM64_SYSROOT  sysroot (default ~/.cache/bwsagent-arm64-sysroot)
#        BWSAGENT_ARM64_OUT      binary (default bin/linux-arm64/bwsagent)
#        BWSAGENT_ARM64_MODELS   model cache for the face smoke run (default: the host's)
set -euo pipefail
cd "$(dirname "$0")/.."

SYSROOT=${BWSAGENT_ARM64_SYSROOT:-$HOME/.cache/bwsagent-arm64-sysroot}
APTCACHE="$SYSROOT.apt"
OUT=${BWSAGENT_ARM64_OUT:-bin/linux-arm64/bwsagent}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
# Packages whose tests are pure Go (they must build with CGO_ENABLED=0).
PURE_PKGS=(./face/geom ./face/models ./face/imgio ./agent/bws ./agent/token ./store ./eval/rates ./agent/sdnotify)

[ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"

log() { printf 'arm64: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
elapsed() { echo $(($(date +%s) - $1))s; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

tools() {
  local missing=()
  command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(crossbuild-essential-arm64)
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (no removals allowed)"
    as_root apt-get update -qq
    # --no-remove: a toolchain install must never take the amd64 OpenCV with it.
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-remove --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

sysroot() {
  if [ -f "$SYSROOT/.complete" ]; then
    log "sysroot $SYSROOT ready"
    return
  fi
  local t0; t0=$(date +%s)
  tools
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    # Only for the arm64 package lists; nothing arm64 is installed.
    as_root dpkg --add-architecture arm64
    as_root apt-get update -qq
  fi
  log "downloading libopencv-dev and its dependencies for arm64 into $APTCACHE"
  mkdir -p "$APTCACHE/archives/partial"
  : >"$APTCACHE/status" # an empty dpkg status: resolve every dependency
  apt-get -qq -o APT::Architecture=arm64 -o APT::Architectures::=arm64 \
    -o Dir::State::status="$APTCACHE/status" -o Dir::Cache="$APTCACHE" \
    -o Debug::NoLocking=1 --download-only --no-install-recommends -y \
    install libopencv-dev >/dev/null
  local tmp="$SYSROOT.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  local n=0 deb
  for deb in "$APTCACHE"/archives/*.deb; do
    dpkg-deb -x "$deb" "$tmp"
    n=$((n + 1))
  done
  # dpkg-deb -x runs no maintainer scripts, so the update-alternatives links
  # for BLAS/LAPACK are missing; without them the link fails on BLAS symbols.
  ln -sf blas/libblas.so.3 "$tmp/usr/lib/aarch64-linux-gnu/libblas.so.3"
  ln -sf lapack/liblapack.so.3 "$tmp/usr/lib/aarch64-linux-gnu/liblapack.so.3"
  rm -rf "$SYSROOT"
  mv "$tmp" "$SYSROOT"
  touch "$SYSROOT/.complete"
  log "sysroot: $n packages extracted in $(elapsed "$t0") ($(du -sh "$SYSROOT" | cut -f1))"
}

cross_env() {
  export GOOS=linux GOARCH=arm64 CGO_ENABLED=1
  export CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++
  export CGO_LDFLAGS="--sysroot=$SYSROOT"
  # PKG_CONFIG_PATH alone would still find the host's opencv4.pc.
  export PKG_CONFIG_LIBDIR="$SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig:$SYSROOT/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$SYSROOT"
}

QEMU=(qemu-aarch64-static -L)

build() {
  [ -f "$SYSROOT/.complete" ] || die "no sysroot at $SYSROOT: run '$0 sysroot' first"
  local t0; t0=$(date +%s)
  (
    cross_env
    mkdir -p "$(dirname "$OUT")"
    go build -ldflags "-X main.Version=$VERSION" -o "$OUT" ./cmd/bwsagent
  )
  log "built $OUT in $(elapsed "$t0"): $(file -b "$OUT" | cut -d, -f1-2)"
}

run_tests() {
  [ -x "$OUT" ] || die "no $OUT: run '$0 build' first"
  local t0; t0=$(date +%s)
  local got
  got=$("${QEMU[@]}" "$SYSROOT" "$OUT" version)
  [ "$got" = "bwsagent $VERSION" ] || die "version under qemu printed '$got', want 'bwsagent $VERSION'"
  log "ok  bwsagent version under qemu: $got"

  # enroll's AVX2 dot product is amd64-only; prove the arm64 build compiles
  # the portable fallback instead (its test compares the two paths).
  local files
  files=$(GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go list -f '{{join .GoFiles " "}}' ./enroll)
  case " $files " in
    *" dot_other.go "*) ;;
    *) die "enroll for arm64 does not compile dot_other.go (files: $files)" ;;
  esac
  case " $files " in *dot_amd64*) die "enroll for arm64 compiles the amd64 path" ;; esac
  log "ok  enroll/arm64 uses the portable dot product (dot_other.go)"

  # Pure-Go packages: CGO_ENABLED=0 also proves they do not need OpenCV.
  # BWSAGENT_TEST_EXEC lets tests that re-run their own binary use qemu too.
  local qemu="qemu-aarch64-static -L $SYSROOT"
  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 BWSAGENT_TEST_EXEC="$qemu" \
    go test -count=1 -exec "$qemu" "${PURE_PKGS[@]}"
  log "ok  pure-Go tests under qemu ($(elapsed "$t0") so far)"

  # cgo: enroll (imports the face engine; all its tests, the portable dot
  # product among them) and a smoke subset of capture, linked against the
  # arm64 OpenCV; then the face engine end to end on gocv's sample photo.
  (
    cross_env
    go test -count=1 -exec "$qemu" ./enroll
    go test -count=1 -exec "$qemu" -run 'TestParseURI|TestConvertToBGR|TestImageSequence' ./capture
  )
  log "ok  cgo tests under qemu (enroll; capture smoke)"
  local models=${BWSAGENT_ARM64_MODELS:-${XDG_CACHE_HOME:-$HOME/.cache}/bwsagent/models}
  local img
  img="$(go list -m -f '{{.Dir}}' gocv.io/x/gocv)/images/face.jpg"
  if [ -n "$models" ] && [ -d "$models" ]; then
    local out
    out=$(OPENCV_LOG_LEVEL=ERROR "${QEMU[@]}" "$SYSROOT" "$OUT" face detect --json --models-dir "$models" "$img")
    case "$out" in
      *'"faces":[{'*) log "ok  face detect under qemu: $out" ;;
      *) die "face detect under qemu found no face: $out" ;;
    esac
  else
    log "skip face detect smoke: no model cache (run 'bwsagent models fetch' or set BWSAGENT_ARM64_MODELS)"
  fi
  log "tests done in $(elapsed "$t0")"
}

main() {
  local t0; t0=$(date +%s)
  case "${1:-all}" in
    sysroot) sysroot ;;
    build) build ;;
    test) run_tests ;;
    all) sysroot; build; run_tests ;;
    *) die "usage: $0 [sysroot|build|test|all]" ;;
  esac
  log "total $(elapsed "$t0")"
}

main "$@"
