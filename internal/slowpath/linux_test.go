package slowpath

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"gotas/internal/appif"
	"gotas/internal/nic/afxdp"
	"gotas/internal/testnet"
)

// Interop with the Linux kernel over AF_XDP on a veth. The Linux peer keeps
// its default offloads, so its segments carry partial checksums.

const linuxBytes = 8 << 20

var (
	gotasIP = netip.MustParsePrefix("10.77.0.1/24")
	linuxIP = netip.MustParseAddr("10.77.0.2")
)

func linuxLab(t *testing.T, sysctls ...string) (*Stack, *testnet.Host) {
	t.Helper()
	lab := testnet.NewT(t)
	ha, err := lab.Host("g")
	if err != nil {
		t.Fatal(err)
	}
	hb, err := lab.Host("l")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.Link(ha, "xa", hb, "xb"); err != nil {
		t.Fatal(err)
	}
	if err := hb.Addr("xb", linuxIP.String()+"/24"); err != nil {
		t.Fatal(err)
	}
	for _, s := range sysctls {
		if _, err := hb.Run(context.Background(), "sysctl", "-w", s); err != nil {
			t.Fatal(err)
		}
	}
	var port *afxdp.Port
	if err := ha.Do(func() (err error) {
		port, err = afxdp.Open(afxdp.Config{Ifname: "xa", ServiceIP: gotasIP.Addr().As4(), StealARPICMP: true,
			Mode: afxdp.ModeNative, Queues: 1})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s, err := NewStack(port, Config{Prefix: gotasIP, RTOMin: 20 * time.Millisecond, MSL: 100 * time.Millisecond})
	if err != nil {
		port.Close()
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Stop()
		port.Close()
	})
	return s, hb
}

// echoConn is the gotas side of an echo or a sink+source.
type rtConn struct {
	got     bytes.Buffer // everything received
	out     []byte       // still to send
	shut    bool
	rxFin   bool
	txFin   bool
	closed  bool
	err     error
	echo    bool
	opened  bool
	shutOut bool // shut down once out is empty and (echo) the peer's FIN came
}

// drive polls ctx until done or the deadline, running the connections.
func drive(t *testing.T, ctx *appif.Context, deadline time.Duration, conns map[appif.Handle]*rtConn,
	onOpen func(ev appif.Event) *rtConn, done func() bool) {
	t.Helper()
	evs := make([]appif.Event, 64)
	end := time.Now().Add(deadline)
	for !done() {
		if time.Now().After(end) {
			t.Fatal("timed out")
		}
		n, err := ctx.Poll(evs)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs[:n] {
			c := conns[ev.Conn]
			switch ev.Type {
			case appif.EvAccepted, appif.EvConnOpened:
				if ev.Err != 0 {
					t.Fatalf("open: %v", ev.Err)
				}
				conns[ev.Conn] = onOpen(ev)
			case appif.EvData:
				c.got.Write(ev.Data[0])
				c.got.Write(ev.Data[1])
				if c.echo {
					c.out = append(c.out, ev.Data[0]...)
					c.out = append(c.out, ev.Data[1]...)
				}
				ctx.RxDone(ev.Conn, ev.N)
			case appif.EvRxClosed:
				c.rxFin = true
			case appif.EvTxClosed:
				c.txFin = true
			case appif.EvClosed:
				t.Fatalf("connection closed: %v", ev.Err)
			}
		}
		for h, c := range conns {
			if len(c.out) > 0 {
				k, err := ctx.Send(h, c.out)
				if err != nil {
					t.Fatal(err)
				}
				c.out = c.out[k:]
			}
			if !c.shut && len(c.out) == 0 && (c.shutOut && (!c.echo || c.rxFin)) {
				ctx.Shutdown(h)
				c.shut = true
			}
			if !c.closed && c.rxFin && c.txFin {
				ctx.Close(h)
				c.closed = true
			}
		}
		if n == 0 {
			ctx.Wait(time.Millisecond)
		}
	}
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = pattern[i%len(pattern)]
	}
	return b
}

func linuxClientToGotas(t *testing.T, sysctls ...string) {
	s, hb := linuxLab(t, sysctls...)
	defer func() {
		st := s.Stats()
		t.Logf("engine: %+v", s.EngineStats(0))
		t.Logf("negotiated: %d connections, TS %d, SACK %d, WS %d, ECN %d", st.Established, st.WithTS, st.WithSACK, st.WithWS, st.WithECN)
		want := uint64(1)
		if len(sysctls) > 0 {
			want = 0
		}
		if st.Established != 1 || st.WithTS != want || st.WithSACK != want || st.WithWS != want {
			t.Errorf("negotiated %+v, want options %d", st, want)
		}
	}()
	ctx, err := s.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctx.Listen(5001, 16); err != nil {
		t.Fatal(err)
	}
	data := payload(linuxBytes)
	var nc net.Conn
	conns := map[appif.Handle]*rtConn{}
	drive(t, ctx, 5*time.Second, conns, nil, func() bool { return true }) // let the listener open
	time.Sleep(10 * time.Millisecond)
	if err := hb.Do(func() (err error) {
		nc, err = net.DialTimeout("tcp", netip.AddrPortFrom(gotasIP.Addr(), 5001).String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	result := make(chan []byte, 1)
	go func() {
		go func() {
			nc.Write(data)
			nc.(*net.TCPConn).CloseWrite()
		}()
		b, _ := io.ReadAll(nc)
		result <- b
	}()
	var echoed []byte
	drive(t, ctx, 60*time.Second, conns, func(appif.Event) *rtConn { return &rtConn{echo: true, shutOut: true} },
		func() bool {
			select {
			case echoed = <-result:
				return true
			default:
				return false
			}
		})
	el := time.Since(start)
	if sha256.Sum256(echoed) != sha256.Sum256(data) {
		t.Fatalf("echo differs: %d bytes back of %d", len(echoed), len(data))
	}
	t.Logf("Linux -> gotas -> Linux echo of %d MiB: %v (%.0f Mbit/s each way)", linuxBytes>>20, el,
		float64(linuxBytes)*8/el.Seconds()/1e6)
	drive(t, ctx, 5*time.Second, conns, nil, func() bool {
		for _, c := range conns {
			if !c.closed {
				return false
			}
		}
		return true
	})
}

func TestLinuxClientToGotas(t *testing.T) { linuxClientToGotas(t) }

func TestLinuxClientNoOptions(t *testing.T) {
	linuxClientToGotas(t, "net.ipv4.tcp_timestamps=0", "net.ipv4.tcp_sack=0", "net.ipv4.tcp_window_scaling=0")
}

func TestGotasClientToLinux(t *testing.T) {
	s, hb := linuxLab(t)
	var ln net.Listener
	if err := hb.Do(func() (err error) {
		ln, err = net.Listen("tcp", ":5002")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo until our FIN
		c.(*net.TCPConn).CloseWrite()
	}()
	ctx, err := s.NewContext()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctx.Connect(netip.AddrPortFrom(linuxIP, 5002)); err != nil {
		t.Fatal(err)
	}
	data := payload(linuxBytes)
	conns := map[appif.Handle]*rtConn{}
	var c *rtConn
	start := time.Now()
	drive(t, ctx, 60*time.Second, conns, func(appif.Event) *rtConn {
		c = &rtConn{out: data, shutOut: true}
		return c
	}, func() bool { return c != nil && c.closed })
	el := time.Since(start)
	if sha256.Sum256(c.got.Bytes()) != sha256.Sum256(data) {
		t.Fatalf("echo differs: %d bytes back of %d", c.got.Len(), len(data))
	}
	t.Logf("gotas -> Linux -> gotas echo of %d MiB: %v (%.0f Mbit/s each way)", linuxBytes>>20, el,
		float64(linuxBytes)*8/el.Seconds()/1e6)
}
