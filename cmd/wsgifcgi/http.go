package main

import (
	"net"
	"net/http"
	"strings"

	"github.com/yookoala/gofast"
)

// httpFront serves plain HTTP by passing each request as FastCGI to addr, one
// of the server's own listeners, so it takes exactly the path a front end takes.
func httpFront(addr net.Addr) http.Handler {
	connect := gofast.SimpleConnFactory(addr.Network(), addr.String())
	session := gofast.Chain(gofast.BasicParamsMap, mapHeaders)(gofast.BasicSession)
	return gofast.NewHandler(session, gofast.SimpleClientFactory(connect))
}

// mapHeaders passes request headers as HTTP_* params the way nginx and Apache
// do: repeated headers joined with ", ", the Host header as sent.
func mapHeaders(inner gofast.SessionHandler) gofast.SessionHandler {
	return func(c gofast.Client, req *gofast.Request) (*gofast.ResponsePipe, error) {
		r := req.Raw
		if r.Host != "" {
			req.Params["HTTP_HOST"] = r.Host
		}
		for k, v := range r.Header {
			name := "HTTP_" + strings.ReplaceAll(strings.ToUpper(k), "-", "_")
			if name == "HTTP_CONTENT_TYPE" || name == "HTTP_CONTENT_LENGTH" {
				continue
			}
			req.Params[name] = strings.Join(v, ", ")
		}
		return inner(c, req)
	}
}
