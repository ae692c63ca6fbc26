package ctlsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gotas/internal/slowpath"
)

// Options configure a Server.
type Options struct {
	// Limits bound each application.
	Limits slowpath.AppLimits
	// MaxApps bounds registered applications (default 64).
	MaxApps int
	// AllowUIDs, when not empty, are the only users whose applications
	// may register (SO_PEERCRED's uid); others are refused with EACCES.
	AllowUIDs []uint32
	// AppPoll is how long applications should poll before they block
	// (--fp-poll-interval-app; 0: their library's default).
	AppPoll time.Duration
	// HelloTimeout is how long a new connection may take to say hello
	// (default 5 s), so idle connections cannot pin registration slots.
	HelloTimeout time.Duration
}

const (
	// teardownWait bounds how long Close waits for an application's
	// connections to be reset and its memory freed.
	teardownWait        = time.Second
	defaultMaxApps      = 64
	defaultHelloTimeout = 5 * time.Second
	// socketMode lets any local user register: SO_PEERCRED names every
	// application, and isolation does not depend on who it is.
	socketMode = 0o666
)

// Server registers applications that connect to a control socket on a
// stack, and tears each down when its connection closes (it exited or
// was killed: the kernel closes the socket either way).
type Server struct {
	st   *slowpath.Stack
	ln   *net.UnixListener
	path string
	opt  Options

	mu     sync.Mutex
	apps   map[*net.UnixConn]*AppInfo
	conns  map[*net.UnixConn]struct{} // every open connection, hello or not
	closed bool
	nextID atomic.Uint32
	wg     sync.WaitGroup

	refused atomic.Uint64
}

// AppInfo describes a registered application.
type AppInfo struct {
	ID       uint32
	Pid      int32
	Uid, Gid uint32
	App      *slowpath.App
	Contexts int
}

// Listen creates the control socket at path (replacing a stale one) and
// serves it until Close.
func Listen(path string, st *slowpath.Stack, opt Options) (*Server, error) {
	if opt.MaxApps <= 0 {
		opt.MaxApps = defaultMaxApps
	}
	if opt.HelloTimeout <= 0 {
		opt.HelloTimeout = defaultHelloTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, socketMode); err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{st: st, ln: ln, path: path, opt: opt, apps: map[*net.UnixConn]*AppInfo{},
		conns: map[*net.UnixConn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// removeStale removes a socket no service listens on; a live one is an
// error (another service owns it).
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.Dial("unixpacket", path); err == nil {
		c.Close()
		return fmt.Errorf("%s: another service is listening there", path)
	}
	return os.Remove(path)
}

// Path is the control socket's path.
func (s *Server) Path() string { return s.path }

// Refused counts registrations turned away (bad version, malformed
// hello, limits).
func (s *Server) Refused() uint64 { return s.refused.Load() }

// Apps lists the registered applications.
func (s *Server) Apps() []AppInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppInfo, 0, len(s.apps))
	for _, a := range s.apps {
		if a.App != nil { // not a slot reserved for a hello in progress
			out = append(out, *a)
		}
	}
	return out
}

// Close stops accepting, closes every application's connection (so each
// client learns the service is gone), tears the applications down (their
// peers get RSTs; it waits up to a second for that) and removes the
// socket.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close() // also removes the socket file
	s.wg.Wait()
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// serve runs one application's registration, then waits for its end.
func (s *Server) serve(c *net.UnixConn) {
	defer c.Close()
	info, err := s.register(c)
	if err != nil {
		s.refused.Add(1)
		return
	}
	defer func() {
		s.mu.Lock()
		delete(s.apps, c)
		s.mu.Unlock()
		s.st.RemoveApp(info.App)
		// Close waits for this: a service that stops resets its
		// applications' connections before the stack goes.
		select {
		case <-info.App.Freed():
		case <-time.After(teardownWait):
		}
	}()
	buf := make([]byte, maxMsg)
	for {
		n, _, _, _, err := c.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			return // EOF: the application exited or was killed
		}
		if !s.request(c, info, buf[:n]) {
			return
		}
	}
}

// register checks the peer and its hello and registers it.
func (s *Server) register(c *net.UnixConn) (*AppInfo, error) {
	cred, err := peerCred(c)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, maxMsg)
	c.SetReadDeadline(time.Now().Add(s.opt.HelloTimeout))
	n, _, _, _, err := c.ReadMsgUnix(buf, nil)
	if err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	typ, ver, err := header(buf[:n])
	switch {
	case err != nil || typ != typeHello || n < helloLen:
		s.refuse(c, syscall.EPROTO, "the first message must be a hello")
		return nil, ErrProtocol
	case ver != Version:
		s.refuse(c, syscall.EPROTONOSUPPORT, fmt.Sprintf("client speaks ABI version %d, this service speaks version %d", ver, Version))
		return nil, ErrVersion
	}
	if len(s.opt.AllowUIDs) > 0 && !slices.Contains(s.opt.AllowUIDs, cred.Uid) {
		s.refuse(c, syscall.EACCES, fmt.Sprintf("uid %d may not register here", cred.Uid))
		return nil, syscall.EACCES
	}
	// Reserve the slot now, so concurrent hellos cannot pass MaxApps and
	// Close, which closes what s.apps holds, cannot miss this one.
	s.mu.Lock()
	full, closed := len(s.apps) >= s.opt.MaxApps, s.closed
	if !full && !closed {
		s.apps[c] = &AppInfo{}
	}
	s.mu.Unlock()
	if full || closed {
		s.refuse(c, syscall.EUSERS, fmt.Sprintf("%d applications registered, the limit", s.opt.MaxApps))
		return nil, slowpath.ErrAppLimit
	}
	ok := false
	defer func() {
		if !ok {
			s.mu.Lock()
			delete(s.apps, c)
			s.mu.Unlock()
		}
	}()
	app, err := s.st.NewApp(cred.Pid, s.opt.Limits)
	if err != nil {
		s.refuse(c, syscall.ENOMEM, err.Error())
		return nil, err
	}
	info := &AppInfo{ID: s.nextID.Add(1), Pid: cred.Pid, Uid: cred.Uid, Gid: cred.Gid, App: app}
	if err := s.welcome(c, info); err != nil {
		s.st.RemoveApp(app)
		return nil, err
	}
	s.mu.Lock()
	s.apps[c] = info
	s.mu.Unlock()
	ok = true
	return info, nil
}

func (s *Server) welcome(c *net.UnixConn, info *AppInfo) error {
	a := info.App
	lim := a.Limits()
	w := Welcome{Cores: uint32(len(a.CoreBells())), AppID: info.ID, RegionSize: a.Region().Size(),
		Addr: s.st.Addr(), RxBuf: s.st.RxBuf(), TxBuf: s.st.TxBuf(), MaxFlows: uint32(lim.MaxFlows),
		AppPollUs: uint32(s.opt.AppPoll / time.Microsecond)}
	fds := []int{a.Region().Fd(), a.SlowBell().Fd()}
	for _, b := range a.CoreBells() {
		fds = append(fds, b.Fd())
	}
	var buf [maxMsg]byte
	_, _, err := c.WriteMsgUnix(w.put(buf[:]), unix.UnixRights(fds...), nil)
	return err
}

func (s *Server) refuse(c *net.UnixConn, errno syscall.Errno, text string) {
	var buf [maxMsg]byte
	c.WriteMsgUnix(putRefused(buf[:], errno, text), nil, nil)
}

// request handles one message of a registered application; false ends
// the application (a protocol violation).
func (s *Server) request(c *net.UnixConn, info *AppInfo, b []byte) bool {
	typ, ver, err := header(b)
	if err != nil || ver != Version || typ != typeNewContext {
		s.refuse(c, syscall.EPROTO, "unexpected message")
		return false
	}
	var buf [maxMsg]byte
	desc, fd, err := s.st.NewAppContextFd(info.App)
	if err != nil {
		_, _, err = c.WriteMsgUnix(putContextReply(buf[:], syscall.ENOBUFS, 0), nil, nil)
		return err == nil
	}
	defer unix.Close(fd)
	s.mu.Lock()
	info.Contexts++
	s.mu.Unlock()
	_, _, err = c.WriteMsgUnix(putContextReply(buf[:], 0, desc), unix.UnixRights(fd), nil)
	return err == nil
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", cerr)
	}
	return cred, nil
}
