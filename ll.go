package gotas

import (
	"net"
	"time"

	"context"

	"gotas/internal/appif"
)

// The low-level interface: a Context is one thread's queues to the stack,
// events instead of blocking calls, and zero-copy views into the
// connections' rings (TAS's libtas). It works the same embedded and on the
// service.
type (
	Context   = appif.Context
	Event     = appif.Event
	EventType = appif.EventType
	Handle    = appif.Handle
)

// Event types (see appif.Event for the fields each sets).
const (
	EvListenOpened = appif.EvListenOpened
	EvListenClosed = appif.EvListenClosed
	EvAccepted     = appif.EvAccepted
	EvConnOpened   = appif.EvConnOpened
	EvData         = appif.EvData
	EvTxSpace      = appif.EvTxSpace
	EvRxClosed     = appif.EvRxClosed
	EvTxClosed     = appif.EvTxClosed
	EvClosed       = appif.EvClosed
)

// NewContext makes a low-level context of its own, separate from the one
// the net.Conn layer uses; one per thread, not safe for concurrent use.
func (s *Stack) NewContext() (*Context, error) {
	if s.client != nil {
		return s.client.NewContext()
	}
	return s.st.NewContext()
}

// Dialer dials on a stack, as net.Dialer does on Linux's.
type Dialer struct {
	Stack *Stack
	// Timeout bounds a dial (0: none but the context's).
	Timeout time.Duration
}

// Dial connects to address ("tcp", "10.0.0.2:80").
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address, giving up when ctx ends or Timeout
// passes.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	return d.Stack.DialContext(ctx, network, address)
}
