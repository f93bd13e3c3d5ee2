// Command bigreport is a hostile health source: it answers every health request with a
// report that never ends (-size bytes of members), for bench/bigreport.sh, which measures
// what it costs glbdns.
//
//	go run ./bench/bigreport -listen 127.0.0.1:18777 -size 1073741824
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18777", "`address` to serve the health API on")
	size := flag.Int64("size", 1<<30, "`bytes` of each report")
	flag.Parse()
	chunk := bytes.Repeat([]byte(`{"pool":"web","member":"m","status":"up"},`), 1000)
	http.HandleFunc("/v1/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if _, err := w.Write([]byte(`{"reporter":"big","index":1,"members":[`)); err != nil {
			return
		}
		for n := int64(0); n < *size; n += int64(len(chunk)) {
			if _, err := w.Write(chunk); err != nil {
				return // the client gave up: what glbdns should do
			}
		}
	})
	if err := http.ListenAndServe(*listen, nil); err != nil {
		fmt.Fprintln(os.Stderr, "bigreport:", err)
		os.Exit(1)
	}
}
