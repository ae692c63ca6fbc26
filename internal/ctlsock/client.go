package ctlsock

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"gotas/internal/appif"
	"gotas/internal/shm"
)

// ErrServiceGone means the service closed the control connection: it
// stopped or restarted. Register again.
var ErrServiceGone = errors.New("tas service gone")

// Client is an application's registration with the service.
type Client struct {
	conn      *net.UnixConn
	welcome   Welcome
	region    *shm.Region
	slowBell  *shm.Doorbell
	coreBells []*shm.Doorbell

	mu        sync.Mutex // one NewContext at a time
	closeOnce sync.Once
	closeErr  error
	replies   chan reply
	gone      chan struct{}
}

type reply struct {
	b   []byte
	fds []int
	err error
}

// Dial registers with the service whose control socket is path.
func Dial(path string) (*Client, error) {
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("connect to the tas service at %s: %w", path, err)
	}
	c := &Client{conn: conn, replies: make(chan reply, 1), gone: make(chan struct{})}
	if err := c.handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	go c.read()
	return c, nil
}

func (c *Client) handshake() error {
	var buf [maxMsg]byte
	if _, _, err := c.conn.WriteMsgUnix(putSimple(buf[:], typeHello, helloLen), nil, nil); err != nil {
		return err
	}
	r := c.readOne()
	if r.err != nil {
		return r.err
	}
	w, fds, err := c.expect(r, typeWelcome)
	if err != nil {
		return err
	}
	if c.welcome, err = parseWelcome(w); err != nil {
		closeFds(fds)
		return err
	}
	if len(fds) != 2+int(c.welcome.Cores) {
		closeFds(fds)
		return fmt.Errorf("welcome carried %d descriptors for %d cores: %w", len(fds), c.welcome.Cores, ErrProtocol)
	}
	return c.adopt(fds)
}

// adopt takes the welcome's descriptors: region, slow-path doorbell, one
// doorbell per core. Each is checked for what it must be.
func (c *Client) adopt(fds []int) error {
	var err error
	if c.region, err = shm.Map(fds[0], c.welcome.RegionSize); err != nil {
		closeFds(fds[1:])
		return err
	}
	if c.slowBell, err = shm.DoorbellFromFd(fds[1]); err != nil {
		closeFds(fds[2:])
		return err
	}
	for i, fd := range fds[2:] {
		b, err := shm.DoorbellFromFd(fd)
		if err != nil {
			closeFds(fds[3+i:])
			return err
		}
		c.coreBells = append(c.coreBells, b)
	}
	return nil
}

// expect checks that r is a message of type typ, turning a Refused
// message into its error.
func (c *Client) expect(r reply, typ uint16) ([]byte, []int, error) {
	t, ver, err := header(r.b)
	if err == nil && t == typeRefused {
		err = refusal(r.b)
	} else if err == nil && ver != Version {
		err = fmt.Errorf("service speaks ABI version %d, this client %d: %w", ver, Version, ErrVersion)
	} else if err == nil && t != typ {
		err = fmt.Errorf("got message type %d, want %d: %w", t, typ, ErrProtocol)
	}
	if err != nil {
		closeFds(r.fds)
		return nil, nil, err
	}
	return r.b, r.fds, nil
}

func (c *Client) readOne() reply {
	buf := make([]byte, maxMsg)
	oob := make([]byte, unix.CmsgSpace(4*(2+maxCores)))
	n, oobn, _, _, err := c.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return reply{err: fmt.Errorf("%w: %v", ErrServiceGone, err)}
	}
	if n == 0 {
		return reply{err: ErrServiceGone}
	}
	fds, err := parseRights(oob[:oobn])
	return reply{b: buf[:n], fds: fds, err: err}
}

// read delivers replies until the service hangs up, then closes gone.
func (c *Client) read() {
	defer close(c.gone)
	for {
		r := c.readOne()
		if r.err != nil {
			return
		}
		select {
		case c.replies <- r:
		default:
			closeFds(r.fds) // nobody asked: a protocol violation by the service
		}
	}
}

// Region is the application's memory; SlowBell and CoreBells are the
// doorbells it rings (tests act as hostile applications with them).
func (c *Client) Region() *shm.Region        { return c.region }
func (c *Client) SlowBell() *shm.Doorbell    { return c.slowBell }
func (c *Client) CoreBells() []*shm.Doorbell { return c.coreBells }

// Gone is closed when the service closes the connection.
func (c *Client) Gone() <-chan struct{} { return c.gone }

// Welcome is what the service told at registration.
func (c *Client) Welcome() Welcome { return c.welcome }

// NewContext asks for a context (one per thread that uses the service).
func (c *Client) NewContext() (*appif.Context, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var buf [maxMsg]byte
	if _, _, err := c.conn.WriteMsgUnix(putSimple(buf[:], typeNewContext, newContextLen), nil, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrServiceGone, err)
	}
	var r reply
	select {
	case r = <-c.replies:
	case <-c.gone:
		return nil, ErrServiceGone
	}
	b, fds, err := c.expect(r, typeContext)
	if err != nil {
		return nil, err
	}
	if len(b) < contextLen || len(fds) > 1 {
		closeFds(fds)
		return nil, fmt.Errorf("context reply of %d bytes with %d descriptors: %w", len(b), len(fds), ErrProtocol)
	}
	if st := syscall.Errno(leUint32(b[offCStatus:])); st != 0 {
		closeFds(fds)
		return nil, fmt.Errorf("new context: %w", st)
	}
	if len(fds) != 1 {
		return nil, fmt.Errorf("context reply without its doorbell: %w", ErrProtocol)
	}
	bell, err := shm.DoorbellFromFd(fds[0])
	if err != nil {
		return nil, err
	}
	ctx, err := appif.Attach(c.region, leUint64(b[offCDesc:]), bell, c.slowBell, c.coreBells)
	if err != nil {
		bell.Close()
	}
	return ctx, err
}

// Close ends the registration: the service resets the application's
// connections and frees its memory. The region stays mapped in this
// process, since contexts may still hold views into it.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", ErrProtocol)
	}
	var fds []int
	for i := range msgs {
		f, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			closeFds(fds)
			return nil, fmt.Errorf("control message: %w", ErrProtocol)
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
