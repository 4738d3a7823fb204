//go:build !linux

package admin

import (
	"log/slog"
	"net"
)

// peerListener relies on the socket's mode alone where SO_PEERCRED is
// missing.
type peerListener struct {
	net.Listener
	log *slog.Logger
}
