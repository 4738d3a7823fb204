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

# Shows the face engine on sample photos (the agent's server arrives with the
# BWS API): detection, pose and quality as JSON lines, then a comparison.
run: setup build
	$(BIN) face detect --json $(GOCV_DIR)/images/face.jpg $(GOCV_DIR)/images/face-detect.jpg
	$(BIN) face compare $(GOCV_DIR)/images/face.jpg $(GOCV_DIR)/images/face-detect.jpg

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
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg | tail -1; \
	  done; \
	done

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
