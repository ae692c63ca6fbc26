package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// These run the workloads over loopback on the Linux stack; the same code
// runs over gotas through the Stack interface.

func listen(t *testing.T) net.Listener {
	ln, err := Linux{}.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestEchoClientServer(t *testing.T) {
	ln := listen(t)
	go EchoServer(ln, 64)
	r, err := RunEchoClient(context.Background(), Linux{}, EchoConfig{
		Addr: ln.Addr().String(), MsgSize: 64, Conns: 4, Pending: 2, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 100 || r.ThroughputRPS <= 0 || r.Errors != 0 {
		t.Fatalf("implausible result %+v", r)
	}
	if !(r.P50Us > 0 && r.P50Us <= r.P99Us && r.P99Us <= r.P999Us) {
		t.Fatalf("percentiles out of order: %+v", r)
	}
}

// An echo server that corrupts the order must be caught by the client.
func TestEchoClientDetectsWrongReplies(t *testing.T) {
	ln := listen(t)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			buf[0]++ // a different message number
			c.Write(buf)
		}
	}()
	r, err := RunEchoClient(context.Background(), Linux{}, EchoConfig{
		Addr: ln.Addr().String(), MsgSize: 64, Conns: 1, Pending: 1, Duration: 100 * time.Millisecond,
	})
	if err == nil || r.Errors != 1 {
		t.Fatalf("wrong replies went unnoticed: %+v, %v", r, err)
	}
}

func TestBulk(t *testing.T) {
	ln := listen(t)
	go BulkServer(ln)
	r, err := RunBulkClient(context.Background(), Linux{}, ln.Addr().String(), 2, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes < 1<<20 || r.Gbps <= 0 {
		t.Fatalf("implausible bulk result %+v", r)
	}
}

func TestHTTPServer(t *testing.T) {
	ln := listen(t)
	go HTTPServer(ln, 12345)
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) != 12345 || body[26] != 'a' {
		t.Fatalf("body %d bytes, err %v", len(body), err)
	}
}

func TestSource(t *testing.T) {
	ln := listen(t)
	go SourceServer(ln)
	r, err := RunSourceClient(context.Background(), Linux{}, ln.Addr().String(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Bytes < 1<<20 || r.Gbps <= 0 || r.Elapsed < 200*time.Millisecond {
		t.Fatalf("implausible source result %+v", r)
	}
}

func TestHTTPClient(t *testing.T) {
	ln := listen(t)
	go HTTPServer(ln, 64)
	r, err := RunHTTPClient(context.Background(), Linux{}, EchoConfig{
		Addr: ln.Addr().String(), Conns: 3, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 100 || r.Errors != 0 || !(r.P50Us > 0 && r.P50Us <= r.P99Us) {
		t.Fatalf("implausible result %+v", r)
	}
}

// A server that answers with an error status is an error, not a
// request served.
func TestHTTPClientRejectsErrors(t *testing.T) {
	ln := listen(t)
	go (&http.Server{Handler: http.NotFoundHandler()}).Serve(ln)
	r, err := RunHTTPClient(context.Background(), Linux{}, EchoConfig{
		Addr: ln.Addr().String(), Conns: 1, Duration: 100 * time.Millisecond,
	})
	if err == nil || r.Errors != 1 || r.Requests != 0 {
		t.Fatalf("404s counted as served: %+v, %v", r, err)
	}
}
