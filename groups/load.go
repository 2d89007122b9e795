package groups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
)

// parsedFile is one decoded and value-checked file.
type parsedFile struct {
	name string
	raw  rawFile
	dec  *fileDecoder
	res  []*regexp.Regexp // compiled script-alias-match regexps, by index (nil: invalid)
}

// Load reads the configuration. Each path is a TOML file or a directory
// whose *.toml files are read in name order. A file with a [vhost] table is
// one virtual host; any other file adds to the server context. All problems
// are reported together (errors.Join), each as "FILE:LINE: key: message" or
// "FILE: key: message".
func Load(paths ...string) (*Config, error) {
	files, errs := listFiles(paths)
	var parsed []*parsedFile
	for _, f := range files {
		pf, err := parseFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, pf.dec.sorted()...)
		parsed = append(parsed, pf)
	}
	c, berrs := build(parsed)
	c.Files = files
	errs = append(errs, berrs...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// listFiles expands the paths into files, directories in name order.
func listFiles(paths []string) (files []string, errs []error) {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, errors.Unwrap(err)))
			continue
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			name := filepath.Join(p, e.Name())
			if !strings.HasSuffix(e.Name(), ".toml") || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if fi, err := os.Stat(name); err != nil || fi.IsDir() {
				continue // a dangling link or a directory named *.toml
			}
			files = append(files, name)
		}
	}
	return files, errs
}

// parseFile decodes one file and checks its values; the error is a syntax
// or read error that leaves nothing to check.
func parseFile(name string) (*parsedFile, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	tree := make(map[string]any)
	if _, err := toml.Decode(string(data), &tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", name, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pf := &parsedFile{name: name, dec: &fileDecoder{file: name, pos: scanPositions(string(data))}}
	d, r := pf.dec, &pf.raw
	d.decodeStruct(tree, reflect.ValueOf(r).Elem(), nil)
	resolveRelative(r, name)

	if r.VHost != nil {
		d.checkVHost(r.VHost, []string{"vhost"})
		if r.Server != nil {
			d.failf([]string{"server"}, "not allowed in a [vhost] file (context keys go in [vhost])")
		}
		if r.Embedded != nil {
			d.failf([]string{"embedded"}, "only allowed in the server context (a file without [vhost])")
		}
	}
	if r.Server != nil {
		d.checkServer(r.Server, []string{"server"})
	}
	if r.Embedded != nil {
		d.checkDaemon(r.Embedded, []string{"embedded"})
	}
	for _, name := range sortedKeys(r.Daemon) {
		if name == "" || strings.HasPrefix(name, "%") {
			d.failf([]string{"daemon", name}, "invalid daemon name")
		}
		d.checkDaemon(r.Daemon[name], []string{"daemon", name})
	}
	for i, im := range r.ImportScript {
		d.checkImport(im, elem("import-script", i))
	}
	for i, a := range r.ScriptAlias {
		d.checkAlias(a, elem("script-alias", i))
	}
	pf.res = make([]*regexp.Regexp, len(r.ScriptAliasMatch))
	for i, a := range r.ScriptAliasMatch {
		pf.res[i] = d.checkAliasMatch(a, elem("script-alias-match", i))
	}
	for i, l := range r.Location {
		d.checkLocation(l, elem("location", i))
	}
	for i, dir := range r.Directory {
		d.checkDirectory(dir, elem("directory", i))
	}
	return pf, nil
}

// elem is the key path of element i of an array of tables.
func elem(key string, i int) []string { return []string{key, fmt.Sprint(i)} }
