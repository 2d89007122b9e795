// Command wsgifcgi serves Python WSGI applications over FastCGI, the way
// mod_wsgi daemon mode does, behind any front web server.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `usage:
  wsgifcgi serve   [-c PATH]... [--http ADDR] [--listen SPEC]...   run the server
  wsgifcgi check   [-c PATH]...            validate config, print the resolved routes
  wsgifcgi convert FILE [-o DIR]           Apache mod_wsgi directives -> TOML (stdout, or files in DIR)
  wsgifcgi version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "serve":
		fitProcs()
		keepGCFloor()
		code = serve(os.Args[2:])
	case "check":
		code = check(os.Args[2:])
	case "convert":
		code = convertCmd(os.Args[2:])
	case "version", "--version", "-v":
		fmt.Println("wsgifcgi", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "wsgifcgi: unknown command %q\n%s", os.Args[1], usage)
		code = 2
	}
	os.Exit(code)
}
