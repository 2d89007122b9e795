package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"strconv"
	"strings"
)

var (
	ceilingHello = []byte("Hello, World!")
	ceilingOneM  = []byte(strings.Repeat("x", 1<<20))
	ceilingChunk = []byte(strings.Repeat("y", 256<<10))
)

// ceilingHandler answers the benchmark app's paths without Python.
func ceilingHandler(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i:]
	}
	switch p {
	case "/1m":
		w.Header().Set("Content-Length", strconv.Itoa(len(ceilingOneM)))
		w.Write(ceilingOneM)
	case "/upload":
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	case "/big":
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, int64(len(ceilingChunk)))
			w.Write(ceilingChunk[:k])
			n -= k
		}
	case "/pid":
		fmt.Fprint(w, os.Getpid())
	default:
		w.Header().Set("Content-Type", "text/plain")
		w.Write(ceilingHello)
	}
}

// ceilingMain is `wsgibench fcgi-ceiling -listen SOCK`.
func ceilingMain(args []string) error {
	fs := flag.NewFlagSet("fcgi-ceiling", flag.ExitOnError)
	sock := fs.String("listen", "", "unix socket path")
	fs.Parse(args)
	os.Remove(*sock)
	l, err := net.Listen("unix", *sock)
	if err != nil {
		return err
	}
	os.Chmod(*sock, 0o666)
	return fcgi.Serve(l, http.HandlerFunc(ceilingHandler))
}
