#!/usr/bin/env bash
# Runs every Fuzz* target of the module for FUZZTIME each (default 10s) and
# prints each one's last progress line. A target fails on a failing input.
#
# A bare "context deadline exceeded" with no failing input is Go's fuzzing
# coordinator racing its own -fuzztime deadline on a loaded machine
# (golang/go#75804, fixed in Go 1.27): that target runs once more, and only
# a second failure counts.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}

run() { "$GO" test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" "$1" 2>&1; }

for pkg in $("$GO" list ./...); do
  for f in $("$GO" test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f ($FUZZTIME)"
    if ! out=$(run "$pkg" "$f"); then
      if grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
        echo "  fuzz-time deadline race without a failing input (golang/go#75804); running $f again"
        out=$(run "$pkg" "$f") || { echo "$out"; exit 1; }
      else
        echo "$out"
        exit 1
      fi
    fi
    grep '^fuzz: elapsed' <<<"$out" | tail -1
  done
done
