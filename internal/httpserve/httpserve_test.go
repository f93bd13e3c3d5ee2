package httpserve

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve starts a bounded server on loopback and returns its address.
func serve(t *testing.T, c Config, h http.Handler) (string, *Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(ln, c)
	srv := c.Server(h, slog.New(slog.DiscardHandler))
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), l
}

func dialFrom(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// get sends one request on c and returns the response's status.
func get(t *testing.T, c net.Conn) (int, error) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

func TestPerSourceBound(t *testing.T) {
	addr, l := serve(t, Config{MaxConns: 10, MaxConnsPerSource: 2}, ok)
	for range 2 {
		if code, err := get(t, dialFrom(t, addr, "127.0.0.1")); err != nil || code != 200 {
			t.Fatalf("within the bound: %d %v", code, err)
		}
	}
	third := dialFrom(t, addr, "127.0.0.1")
	if _, err := third.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("a third connection from 127.0.0.1: %v, want it closed", err)
	}
	if code, err := get(t, dialFrom(t, addr, "127.0.1.1")); err != nil || code != 200 {
		t.Errorf("another source: %d %v", code, err)
	}
	if l.Refused() != 1 || l.Open() != 3 {
		t.Errorf("refused %d, open %d; want 1 and 3", l.Refused(), l.Open())
	}
}

func TestGlobalBoundReleases(t *testing.T) {
	addr, l := serve(t, Config{MaxConns: 1, MaxConnsPerSource: 1}, ok)
	first := dialFrom(t, addr, "127.0.0.1")
	if code, err := get(t, first); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	second := dialFrom(t, addr, "127.0.1.1")
	if _, err := second.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("past the global bound: %v, want it closed", err)
	}
	first.Close()
	for i := 0; l.Open() != 0; i++ {
		if i == 500 {
			t.Fatal("the closed connection's slot not released within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, err := get(t, dialFrom(t, addr, "127.0.1.1")); err != nil || code != 200 {
		t.Errorf("after the first closed: %d %v", code, err)
	}
}

// A client that sends nothing, or a body slowly, or headers too large, is let go.
func TestTimeBoundsAndHeaders(t *testing.T) {
	addr, l := serve(t, Config{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, MaxHeaderBytes: 1024},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	silent := dialFrom(t, addr, "127.0.0.1")
	start := time.Now()
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Error("a silent connection was answered")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a silent connection held %v", took)
	}

	slow := dialFrom(t, addr, "127.0.0.1")
	io.WriteString(slow, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
	start = time.Now()
	for i := 0; i < 50; i++ {
		if _, err := slow.Write([]byte("x")); err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a slow body was read for %v", took)
	}

	big := dialFrom(t, addr, "127.0.0.1")
	io.WriteString(big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 8192)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers over the bound: %v %v, want 431", resp, err)
	}
	for i := 0; l.Open() != 0; i++ {
		if i == 500 {
			t.Fatalf("%d connections still open 5s after their bounds", l.Open())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(err.Error(), "reset")
}
