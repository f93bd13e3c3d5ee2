// Command backend is a demo HTTP backend for `make run`: it answers /healthz with 200,
// /metrics with its open connections in the Prometheus text format
// (demo_active_connections, what the example policy's least_connections service reads),
// /hold?seconds=N by holding the request open for N seconds (at most 600; default 60), and
// every other path with a line naming itself, on each address given. Stop it (kill the
// process) and healthd takes it out of the DNS answers.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	name := flag.String("name", "backend", "name to answer with")
	listen := flag.String("listen", "127.0.0.11:8080", "address to listen on")
	flag.Parse()
	// active counts the open client connections, idle ones included: what a load balancer
	// in front of a real server would see as its connections.
	var active atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP demo_active_connections Open client connections.\n# TYPE demo_active_connections gauge\n")
		fmt.Fprintf(w, "demo_active_connections{backend=%q} %d\n", *name, active.Load())
	})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs <= 0 {
			secs = 60
		}
		select {
		case <-time.After(time.Duration(min(secs, 600)) * time.Second):
		case <-r.Context().Done():
		}
		fmt.Fprintf(w, "held by %s for %ds\n", *name, secs)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "hello from %s\n", *name) })
	srv := &http.Server{Addr: *listen, Handler: mux, ConnState: func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			active.Add(1)
		case http.StateClosed, http.StateHijacked:
			active.Add(-1)
		}
	}}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
