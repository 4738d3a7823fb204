package admin

import (
	"log/slog"
	"net"
	"os"
	"syscall"
)

// peerListener accepts only connections from the agent's own user or root
// (SO_PEERCRED): the socket's mode already says so, this makes it hold even
// if someone loosens the mode or the directory.
type peerListener struct {
	net.Listener
	log *slog.Logger
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, ok := peerUID(c)
		if ok && (uid == 0 || uid == os.Getuid()) {
			return c, nil
		}
		l.log.Warn("admin socket: refused a connection from another user", "uid", uid)
		c.Close()
	}
}

func peerUID(c net.Conn) (int, bool) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return -1, false
	}
	return int(cred.Uid), true
}
