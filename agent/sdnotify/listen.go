package sdnotify

import (
	"fmt"
	"net"

	"github.com/coreos/go-systemd/v22/activation"
)

// Activated returns the first stream socket systemd passed
// (bwsagent.socket), or nil without socket activation: serve it instead
// of binding. With socket activation the port is bound before the agent
// starts, so clients connecting during start-up wait instead of being
// refused, and the agent needs no right to bind privileged ports. Further
// sockets are closed: the agent serves one listener.
func Activated() (net.Listener, error) {
	// go-systemd checks LISTEN_PID, so variables meant for a parent are
	// ignored.
	ls, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	var got net.Listener
	for _, l := range ls {
		if l == nil { // not a stream socket
			continue
		}
		if got != nil {
			l.Close()
			continue
		}
		got = l
	}
	return got, nil
}
