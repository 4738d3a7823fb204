# bwsagent — make run: set up and run; make test: set up and run every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
export OPENCV_LOG_LEVEL ?= ERROR
export BWSAGENT_REQUIRE_MODELS ?= 1

GO        ?= go
BIN       := bin/bwsagent
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 10s
GOCV_DIR   = $(shell $(GO) list -m -f '{{.Dir}}' gocv.io/x/gocv)

.PHONY: all setup build run test vet staticcheck unit fuzz bench eval clean

all: build

setup:
	./scripts/setup.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/bwsagent

# Runs the agent on the demo camera (a synthetic head turning left, right, up
# and down) with a data directory under bin/, and a demo app whose tokens the
# kiosk page may fetch: open the printed URL and press Start. Ctrl-C stops it.
RUN_DIR    ?= $(CURDIR)/bin/run
RUN_LISTEN ?= 127.0.0.1:8480
run: setup build
	@mkdir -p $(RUN_DIR)
	@$(BIN) apps list --data-dir $(RUN_DIR) 2>/dev/null | grep -q '^demo ' || \
	  $(BIN) apps add --data-dir $(RUN_DIR) --id demo --name "make run demo" --storage demo --partition 1 >/dev/null
	@echo "kiosk page: http://$(RUN_LISTEN)/  (data directory $(RUN_DIR))"
	BWSAGENT_KIOSK_DEMO_APP=demo BWSAGENT_KIOSK_DEMO_BCID=demo.1.1 \
	  $(BIN) serve --data-dir $(RUN_DIR) --listen $(RUN_LISTEN) --source demo

test: setup vet staticcheck unit fuzz

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

staticcheck:
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	staticcheck ./...

# Every test under the race detector, then the Mat leak checks, then the
# benchmarks once each (so they cannot rot), all with real models.
unit:
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -tags matprofile ./face/...
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./...

# Each fuzz target for FUZZTIME (CI: seconds; make fuzz FUZZTIME=5m for the long pass).
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 200x ./face/
	$(GO) run ./bench/face -n 200

# Accuracy on the real data in ../shared/data (or BWSAGENT_TESTDATA).
DATA ?= $(or $(BWSAGENT_TESTDATA),../shared/data)
eval: build
	$(BIN) eval recognition --plot docs/det-recognition-lfw.png $(DATA)/identities/lfw_deepfunneled_min10
	$(BIN) eval recognition --enroll 3 --plot docs/det-recognition-lfw-enroll3.png $(DATA)/identities/lfw_deepfunneled_min10
	rm -rf /tmp/bwsagent-poseset && $(BIN) eval gen-pose /tmp/bwsagent-poseset $(GOCV_DIR)/images/face-detect.jpg $(GOCV_DIR)/images/face.jpg $$(ls $(DATA)/identities/lfw_deepfunneled_min10/*/*_0001.jpg | head -40)
	$(BIN) eval pose /tmp/bwsagent-poseset

clean:
	rm -rf bin

# --- Installation, packaging, arm64 (systemd service: issue 8) ---------------
.PHONY: bundle install deb arm64 arm64-deb

PREFIX     ?= /usr
DESTDIR    ?=
UNITDIR    ?= /lib/systemd/system
SYSCONFDIR ?= /etc
BUNDLE     := bin/models.tar.gz

# The integrity-checked models as a bundle ('bwsagent models bundle').
$(BUNDLE): build
	$(BIN) models bundle $(BUNDLE)
bundle: $(BUNDLE)

# Binary, units, example config (kept if present: it is the admin's) and the
# models bundle, which the service installs into its cache at start. Run as
# root on the device; DESTDIR stages an image instead. The template key is
# made only on a real install (DESTDIR empty): one key per device.
install: build $(BUNDLE)
	install -Dm0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/bwsagent
	install -Dm0644 systemd/bwsagent.service $(DESTDIR)$(UNITDIR)/bwsagent.service
	install -Dm0644 systemd/bwsagent.socket $(DESTDIR)$(UNITDIR)/bwsagent.socket
	install -Dm0644 $(BUNDLE) $(DESTDIR)$(PREFIX)/share/bwsagent/models.tar.gz
	@if [ -f configs/bwsagent.yaml ]; then \
	  if [ -e $(DESTDIR)$(SYSCONFDIR)/bwsagent/bwsagent.yaml ]; then \
	    echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/bwsagent/bwsagent.yaml"; \
	  else install -Dm0644 configs/bwsagent.yaml $(DESTDIR)$(SYSCONFDIR)/bwsagent/bwsagent.yaml; fi; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ ! -e $(SYSCONFDIR)/bwsagent/template.key ]; then \
	  mkdir -p $(SYSCONFDIR)/bwsagent; \
	  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >$(SYSCONFDIR)/bwsagent/template.key && echo >>$(SYSCONFDIR)/bwsagent/template.key); \
	  echo "install: created $(SYSCONFDIR)/bwsagent/template.key: back it up apart from /var/lib/bwsagent"; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; \
	  echo "install: start with 'systemctl enable --now bwsagent'"; fi

# Debian package of the native binary (bin/bwsagent_<version>_<arch>.deb).
deb: build $(BUNDLE)
	VERSION=$(VERSION) packaging/deb.sh $(BIN) $(BUNDLE) bin

# linux/arm64: cross-build with an extracted-.deb sysroot, then run
# 'bwsagent version', the pure-Go tests, cgo smoke tests and a face
# detection under qemu-user (scripts/arm64.sh; ~1 min warm, ~4 min cold plus
# ~70 s for the sysroot the first time). Not part of 'make test'.
arm64:
	VERSION=$(VERSION) scripts/arm64.sh all

# The arm64 Debian package (Depends resolved by soname on this machine).
arm64-deb: arm64 $(BUNDLE)
	VERSION=$(VERSION) packaging/deb.sh bin/linux-arm64/bwsagent $(BUNDLE) bin

# --- Reliability: crash safety and soak (issue 9) ----------------------------
# The short versions run in 'make test' (tests/crash, tests/faults,
# bench/load's one-minute soak); these are the long ones, printing figures.
.PHONY: crash soak
CRASH_CLASSES ?= 1000
CRASH_KILLS   ?= 20
SOAK_RATE     ?= 8
SOAK_DURATION ?= 30m

# Enrolls CRASH_CLASSES classes through the API while kill -9 hits the agent
# CRASH_KILLS times; checks the store and every acknowledged class each time.
crash: build
	set -o pipefail; $(GO) test -count=1 -timeout 3h -v -run '^TestKill9DuringEnrollment$$' ./tests/crash \
	  -args -bin $(CURDIR)/$(BIN) -classes $(CRASH_CLASSES) -kills $(CRASH_KILLS) | grep -E '^(crash:|--- |ok|FAIL)|seed|lost|check'

# Flows at SOAK_RATE/s for SOAK_DURATION against a fresh agent, alternating
# enroll (token, 4 uploads, /enroll) and verify (token, 1 upload, /verify);
# fails on any error or RSS growth over 10 % after the warm-up.
soak: build
	$(GO) run ./bench/load -bin $(CURDIR)/$(BIN) -rate $(SOAK_RATE) -duration $(SOAK_DURATION)
