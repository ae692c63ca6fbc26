// Package testnet builds small networks of Linux network namespaces
// ("hosts") joined by veth links, for tests, benchmarks and the demo.
//
// Everything a Lab makes carries the Lab's unique prefix and is deleted by
// name in Close, so parallel test packages never collide and a failed test
// leaves nothing behind. Links are created directly inside their namespaces,
// so they disappear with them even if Close is never reached.
package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Lab owns a set of namespaces and the processes started in them.
type Lab struct {
	prefix string

	mu    sync.Mutex
	hosts []*Host
	procs []*exec.Cmd
}

// Host is one network namespace.
type Host struct {
	lab  *Lab
	Name string // the namespace name, as `ip netns` lists it
}

// New makes an empty lab. tag shows up in namespace names to tell what made
// them; a random suffix keeps concurrent labs apart.
func New(tag string) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("testnet: the ip command (iproute2) is missing: %w", err)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	if len(tag) > 8 {
		tag = tag[:8]
	}
	return &Lab{prefix: "gt" + tag + hex.EncodeToString(b[:])}, nil
}

// ErrNotRoot is returned by New when namespaces cannot be made.
var ErrNotRoot = errors.New("testnet: network namespaces need root")

// NewT makes a lab for a test: it skips the test with a clear message when
// not root and deletes the lab when the test ends, pass or fail.
func NewT(t testing.TB) *Lab {
	t.Helper()
	lab, err := New(shortTag(t.Name()))
	if errors.Is(err, ErrNotRoot) {
		t.Skip("skipping: needs root for network namespaces")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("testnet cleanup: %v", err)
		}
	})
	return lab
}

func shortTag(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	s := b.String()
	if len(s) > 4 {
		s = s[len(s)-4:]
	}
	return s
}

// Prefix is the unique prefix of every namespace this lab makes.
func (l *Lab) Prefix() string { return l.prefix }

// Host makes a namespace named prefix-name with its loopback up.
func (l *Lab) Host(name string) (*Host, error) {
	h := &Host{lab: l, Name: l.prefix + "-" + name}
	if _, err := run("ip", "netns", "add", h.Name); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	if _, err := h.IP("link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return h, nil
}

// Link joins a and b with a veth pair, ifA in a and ifB in b, both up.
// Interface names are per namespace, so short fixed names are fine.
func (l *Lab) Link(a *Host, ifA string, b *Host, ifB string) error {
	if _, err := run("ip", "link", "add", "name", ifA, "netns", a.Name, "type", "veth",
		"peer", "name", ifB, "netns", b.Name); err != nil {
		return err
	}
	if _, err := a.IP("link", "set", ifA, "up"); err != nil {
		return err
	}
	_, err := b.IP("link", "set", ifB, "up")
	return err
}

// Close stops the processes the lab started (by pid) and deletes its
// namespaces by name, which also deletes every link inside them.
func (l *Lab) Close() error {
	l.mu.Lock()
	procs, hosts := l.procs, l.hosts
	l.procs, l.hosts = nil, nil
	l.mu.Unlock()
	for _, c := range procs {
		if c.Process != nil && c.ProcessState == nil {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}
	var errs []error
	for i := len(hosts) - 1; i >= 0; i-- {
		if _, err := run("ip", "netns", "del", hosts[i].Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// IP runs `ip ARGS` inside the host.
func (h *Host) IP(args ...string) (string, error) {
	return run("ip", append([]string{"-n", h.Name}, args...)...)
}

// Addr assigns cidr (e.g. 10.0.0.2/24) to ifname.
func (h *Host) Addr(ifname, cidr string) error {
	_, err := h.IP("addr", "add", cidr, "dev", ifname)
	return err
}

// Route adds a route to dst (CIDR or "default") via gateway.
func (h *Host) Route(dst, via string) error {
	_, err := h.IP("route", "add", dst, "via", via)
	return err
}

// Run runs a command inside the host and returns its combined output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := h.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), h.Name, err, out.String())
	}
	return out.String(), err
}

// CommandContext prepares a command that runs inside the host.
func (h *Host) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Start starts a long-running command inside the host; Close kills it by
// pid if it is still running.
func (h *Host) Start(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, cmd)
	h.lab.mu.Unlock()
	return nil
}

// Do runs fn on an OS thread switched into the host's namespace. Sockets fn
// opens belong to the host and keep working from any goroutine afterwards.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- h.inNamespace(fn)
		// A thread that could not switch back stays locked and so dies with
		// this goroutine instead of carrying the namespace into others.
	}()
	return <-errc
}

func (h *Host) inNamespace(fn func() error) error {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(orig)
	ns, err := unix.Open("/run/netns/"+h.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ns)
	if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("testnet: setns %s: %w", h.Name, err)
	}
	fnErr := fn()
	if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return fnErr
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// MAC returns the hardware address of ifname inside the host.
func (h *Host) MAC(ifname string) ([6]byte, error) {
	var mac [6]byte
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		copy(mac[:], ifi.HardwareAddr)
		return nil
	})
	return mac, err
}
