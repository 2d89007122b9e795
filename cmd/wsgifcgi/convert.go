package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsgifcgi/wsgifcgi/convert"
	"github.com/wsgifcgi/wsgifcgi/groups"
)

// convertCmd is `wsgifcgi convert FILE [-o DIR]`.
func convertCmd(args []string) int { return runConvert(args, os.Stdout, os.Stderr) }

// runConvert converts the Apache configuration FILE: the TOML goes to
// stdout (or into DIR with -o), what was not translated to stderr. It exits
// 1 only when the configuration cannot be read.
func runConvert(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("o", "", "write one file per context into `DIR` instead of stdout")
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: wsgifcgi convert FILE [-o DIR]") }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// FILE may come before -o: parse what follows it too.
	rest := fs.Args()
	if len(rest) > 0 {
		if err := fs.Parse(rest[1:]); err != nil {
			return 2
		}
		rest = append(rest[:1], fs.Args()...)
	}
	if len(rest) != 1 {
		fs.Usage()
		return 2
	}
	res, err := convert.Convert(rest[0])
	if err != nil {
		fmt.Fprintln(stderr, "wsgifcgi convert:", err)
		return 1
	}
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, n)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "warning:", w.Text(*dir))
	}
	if *dir == "" {
		checkLoads(res, "", stderr)
		if err := res.Write(stdout); err != nil {
			fmt.Fprintln(stderr, "wsgifcgi convert:", err)
			return 1
		}
		return 0
	}
	if err := res.WriteDir(*dir); err != nil {
		fmt.Fprintln(stderr, "wsgifcgi convert:", err)
		return 1
	}
	for _, f := range res.Files {
		fmt.Fprintln(stderr, "wrote", filepath.Join(*dir, f.Name))
	}
	checkLoads(res, *dir, stderr)
	return 0
}

// checkLoads loads the output as `serve` would and reports what it says,
// so a conversion that does not load is never silent. With dir (-o) it
// loads the files written there, and the messages name them; without, it
// loads a temporary copy and the messages name the files as stdout heads
// them ("# ==> NAME <==").
func checkLoads(res *convert.Result, dir string, stderr io.Writer) {
	load, prefix := dir, ""
	if dir == "" {
		tmp, err := os.MkdirTemp("", "wsgifcgi-convert-")
		if err != nil {
			return
		}
		defer os.RemoveAll(tmp)
		if err := res.WriteDir(tmp); err != nil {
			return
		}
		load, prefix = tmp, tmp+string(filepath.Separator)
	}
	name := func(s string) string {
		if prefix == "" {
			return s
		}
		return strings.ReplaceAll(s, prefix, "")
	}
	cfg, err := groups.Load(load)
	if err != nil {
		fmt.Fprintln(stderr, "warning: the converted configuration does not load:", name(err.Error()))
		return
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", name(w))
	}
}
