package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotas/internal/slowpath"
)

// serveStream serves size bytes of stream(seed) over HTTP on ln until the
// test ends.
func serveStream(t *testing.T, ln net.Listener, seed uint64, size int64) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.Copy(w, stream(seed, size))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// curl downloads from a net/http server running on gotas.
func TestCurlDownloadsFromGotasHTTPServer(t *testing.T) {
	needTool(t, "curl")
	tp := newTopo(t)
	const size = 8 << 20
	ln := tp.gotasListen(t, "8080")
	serveStream(t, ln, 7, size)
	out, err := tp.peer.Run(t.Context(), "sh", "-c", "curl -sS --max-time 30 http://"+gotasIP+":8080/file | sha256sum")
	if err != nil {
		t.Fatal(err)
	}
	want := expectSum(7, size)
	if got := strings.Fields(out)[0]; got != hex.EncodeToString(want[:]) {
		t.Fatalf("curl got sha256 %s, want %x", got, want)
	}
}

// A gotas client downloads from a server in the Linux namespace.
func TestGotasClientDownloadsFromLinuxHTTPServer(t *testing.T) {
	tp := newTopo(t)
	const size = 8 << 20
	ln := tp.linuxListen(t, "8081")
	serveStream(t, ln, 8, size)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: tp.stack.DialContext}}
	resp, err := client.Get("http://" + linuxIP + ":8081/file")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, n, err := sum(resp.Body)
	if err != nil || n != size || got != expectSum(8, size) {
		t.Fatalf("downloaded %d bytes (%v), sha256 match %v", n, err, got == expectSum(8, size))
	}
}

// One GiB each way, compared by sha256.
func TestOneGiBEachWay(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 2 GiB of transfers in -short mode")
	}
	tp := newTopo(t)
	const size = 1 << 30
	lc, gc := tp.linuxToGotas(t, "9000")
	t.Run("linux-to-gotas", func(t *testing.T) { transfer(t, lc, gc, 1, size, 3*time.Minute) })
	t.Run("gotas-to-linux", func(t *testing.T) { transfer(t, gc, lc, 2, size, 3*time.Minute) })
}

// Half-close in both directions: each side keeps reading after the other
// has sent FIN, and keeps writing after it has received one.
func TestHalfClose(t *testing.T) {
	tp := newTopo(t)
	for _, dir := range []string{"gotas-closes-first", "linux-closes-first"} {
		t.Run(dir, func(t *testing.T) {
			lc, gc := tp.linuxToGotas(t, map[string]string{"gotas-closes-first": "9001", "linux-closes-first": "9002"}[dir])
			first, second := gc, lc
			if dir == "linux-closes-first" {
				first, second = lc, gc
			}
			// first sends and half-closes; second reads EOF, then answers
			// over the still-open other direction.
			transfer(t, first, second, 3, 1<<20, 20*time.Second)
			transfer(t, second, first, 4, 1<<20, 20*time.Second)
		})
	}
}

// A RST from the Linux peer mid-transfer surfaces as ECONNRESET.
func TestPeerResetMidTransfer(t *testing.T) {
	tp := newTopo(t)
	ln := tp.linuxListen(t, "9003")
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.CopyN(io.Discard, c, 1<<20)
		c.(*net.TCPConn).SetLinger(0) // close sends RST
		c.Close()
	}()
	gc := tp.gotasDial(t, linuxIP+":9003")
	defer gc.Close()
	gc.SetDeadline(time.Now().Add(20 * time.Second))
	var err error
	for err == nil {
		_, err = gc.Write(make([]byte, 64<<10))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		// The reset may arrive while we are between writes; a read sees it.
		_, rerr := gc.Read(make([]byte, 1))
		if !errors.Is(rerr, syscall.ECONNRESET) {
			t.Fatalf("after the peer's RST: write %v, read %v; want ECONNRESET", err, rerr)
		}
	}
}

// Connecting to a port nobody listens on fails promptly with ECONNREFUSED.
func TestConnectToClosedPortIsRefused(t *testing.T) {
	tp := newTopo(t)
	start := time.Now()
	_, err := tp.stack.Dial("tcp", linuxIP+":9")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed Linux port: %v, want ECONNREFUSED", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusal took %v", d)
	}
	// And Linux connecting to a closed gotas port is refused too.
	if _, err := tp.linuxDialErr(gotasIP + ":9"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Linux dialing a closed gotas port: %v, want ECONNREFUSED", err)
	}
}

// The Linux peer without timestamps, SACK or window scaling.
func TestLinuxPeerWithoutOptions(t *testing.T) {
	for _, key := range []string{"net.ipv4.tcp_timestamps", "net.ipv4.tcp_sack", "net.ipv4.tcp_window_scaling"} {
		t.Run(key[len("net.ipv4."):], func(t *testing.T) {
			tp := newTopo(t)
			tp.sysctl(t, key, "0")
			lc, gc := tp.linuxToGotas(t, "9004")
			transfer(t, lc, gc, 5, 32<<20, time.Minute)
			transfer(t, gc, lc, 6, 32<<20, time.Minute)
		})
	}
}

// 1000 concurrent connections from Linux, each echoing 1 MB through gotas.
func TestThousandConcurrentEchoes(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 2 GB of echo traffic in -short mode")
	}
	tp := newTopo(t, withStack(func(c *slowpath.Config) {
		c.MaxFlows = 2048
		c.RxBuf, c.TxBuf = 64<<10, 64<<10
	}))
	go echoAll(tp.gotasListen(t, "9005"))
	const conns, each = 1000, 1 << 20
	conn := make([]net.Conn, conns)
	for i := range conn {
		conn[i] = tp.linuxDial(t, gotasIP+":9005")
		defer conn[i].Close()
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i, c := range conn {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(3 * time.Minute))
			go func() {
				io.Copy(c, stream(uint64(i), each))
				c.(*net.TCPConn).CloseWrite()
			}()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil || n != each || [32]byte(h.Sum(nil)) != expectSum(uint64(i), each) {
				errs <- fmt.Errorf("connection %d: echoed %d bytes, err %v", i, n, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// 10,000 sequential short connections, then flows, ports and buffers are
// back to where they started.
func TestTenThousandSequentialConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping 10,000 connections in -short mode")
	}
	tp := newTopo(t)
	ln := tp.linuxListen(t, "9006")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 64)
				n, _ := io.ReadFull(c, buf)
				c.Write(buf[:n])
				c.Close()
			}()
		}
	}()
	before := tp.stack.Engine().Resources()
	msg := []byte(strings.Repeat("x", 64))
	for i := 0; i < 10000; i++ {
		c := tp.gotasDial(t, linuxIP+":9006")
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		got, err := io.ReadAll(c)
		if err != nil || len(got) != 64 {
			t.Fatalf("connection %d: read %d bytes, %v", i, len(got), err)
		}
		c.Close()
	}
	// TIME_WAIT lasts 2*MSL (200 ms here); give teardown that long.
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := tp.stack.Engine().Resources()
		if after == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resources before %+v, after 10,000 connections %+v", before, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
