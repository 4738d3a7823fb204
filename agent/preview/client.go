package preview

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// frameMsg is one encoded frame, shared read-only by every client queue.
type frameMsg struct {
	meta, jpeg []byte
	captured   time.Time
}

// client is one socket's bounded queues. Producers (the hub's frame loop,
// Publish) only append under mu and signal; the client's writer drains.
type client struct {
	mu       sync.Mutex
	frames   []*frameMsg
	events   [][]byte
	maxF     int
	maxE     int
	dropF    uint64
	dropE    uint64
	notify   chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newClient(cfg Config) *client {
	return &client{
		maxF: cfg.FrameQueue, maxE: cfg.EventQueue,
		notify: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

func (c *client) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *client) stop() { c.stopOnce.Do(func() { close(c.done) }) }

// pushFrame queues m, dropping the oldest frame when full. Callers hold
// the hub's lock, never the client's writer.
func (c *client) pushFrame(m *frameMsg) {
	c.mu.Lock()
	if len(c.frames) >= c.maxF {
		copy(c.frames, c.frames[1:])
		c.frames = c.frames[:len(c.frames)-1]
		c.dropF++
	}
	c.frames = append(c.frames, m)
	c.mu.Unlock()
	c.signal()
}

func (c *client) pushEvent(b []byte) {
	c.mu.Lock()
	if len(c.events) >= c.maxE {
		copy(c.events, c.events[1:])
		c.events = c.events[:len(c.events)-1]
		c.dropE++
	}
	c.events = append(c.events, b)
	c.mu.Unlock()
	c.signal()
}

// pop returns the next message, events first (a prompt must not wait
// behind video), and the drops since the last call.
func (c *client) pop() (ev []byte, fr *frameMsg, dropF, dropE uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	dropF, dropE, c.dropF, c.dropE = c.dropF, c.dropE, 0, 0
	if len(c.events) > 0 {
		ev = c.events[0]
		c.events[0] = nil
		c.events = c.events[1:]
		return
	}
	if len(c.frames) > 0 {
		fr = c.frames[0]
		c.frames[0] = nil
		c.frames = c.frames[1:]
	}
	return
}

// serve runs the client's reader and writer; it returns when either ends,
// the hub stops, or the request context is cancelled.
func (h *Hub) serve(ctx context.Context, c *client, conn *websocket.Conn) {
	log := h.log.With("remote", conn.RemoteAddr().String())
	h.m.clients.Inc()
	defer h.m.clients.Dec()
	log.Debug("preview client connected")

	readDone := make(chan struct{})
	go func() { // owned: serve waits for readDone before returning
		defer close(readDone)
		h.readLoop(c, conn)
	}()
	err := h.writeLoop(ctx, c, conn)
	c.stop()
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
	_ = conn.Close() // unblocks the reader
	<-readDone
	if err != nil && !isClosedErr(err) {
		log.Debug("preview client dropped", "err", err)
	}
}

// readLoop discards client messages; its reads are what process pongs and
// notice a closed or silent peer.
func (h *Hub) readLoop(c *client, conn *websocket.Conn) {
	defer c.stop()
	conn.SetReadLimit(4096)
	_ = conn.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	})
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
		_ = conn.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	}
}

func (h *Hub) writeLoop(ctx context.Context, c *client, conn *websocket.Conn) error {
	var ping <-chan time.Time
	if h.cfg.PingInterval > 0 {
		t := time.NewTicker(h.cfg.PingInterval)
		defer t.Stop()
		ping = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return nil
		case <-ping:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				return err
			}
		case <-c.notify:
			for {
				ev, fr, dropF, dropE := c.pop()
				if dropF > 0 {
					h.dropped.Add(dropF)
					h.m.framesDropped.Add(float64(dropF))
				}
				if dropE > 0 {
					h.evDropped.Add(dropE)
					h.m.eventsDropped.Add(float64(dropE))
				}
				if ev == nil && fr == nil {
					break
				}
				if err := h.write(conn, ev, fr); err != nil {
					return err
				}
				select {
				case <-c.done:
					return nil
				default:
				}
			}
		}
	}
}

func (h *Hub) write(conn *websocket.Conn, ev []byte, fr *frameMsg) error {
	// One deadline per message: a frozen peer (full TCP window) is cut off
	// after WriteTimeout instead of holding its queue forever.
	if err := conn.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)); err != nil {
		return err
	}
	if ev != nil {
		return conn.WriteMessage(websocket.TextMessage, ev)
	}
	if err := conn.WriteMessage(websocket.TextMessage, fr.meta); err != nil {
		return err
	}
	if err := conn.WriteMessage(websocket.BinaryMessage, fr.jpeg); err != nil {
		return err
	}
	h.sent.Add(1)
	h.m.framesSent.Inc()
	h.m.latency.Observe(time.Since(fr.captured).Seconds())
	return nil
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) ||
		errors.Is(err, context.Canceled)
}
