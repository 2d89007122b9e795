package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/wsgifcgi/wsgifcgi/gateway"
	"github.com/wsgifcgi/wsgifcgi/groups"
)

// multi is a flag that may be given several times.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// configPaths applies the default: /etc/wsgifcgi/conf.d if it exists, else ./conf.d.
func configPaths(given []string) []string {
	if len(given) > 0 {
		return given
	}
	if st, err := os.Stat("/etc/wsgifcgi/conf.d"); err == nil && st.IsDir() {
		return []string{"/etc/wsgifcgi/conf.d"}
	}
	return []string{"conf.d"}
}

func check(args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	var paths multi
	fs.Var(&paths, "c", "configuration file or directory (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := groups.Load(configPaths(paths)...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, w := range append(cfg.Warnings, gateway.AccessWarnings(cfg)...) {
		fmt.Fprintln(os.Stderr, "warning:", w)
	}
	if err := gateway.Check(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.WriteTable(os.Stdout)
	return 0
}
