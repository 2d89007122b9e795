package groups

import (
	"path/filepath"
	"strings"
)

// resolveRelative makes the file paths of one file absolute: a relative path
// is taken from the directory of the file that holds it (so a checkout's
// conf.d can point at ../examples). A trailing "/" (the directory form of
// script-alias) survives.
func resolveRelative(r *rawFile, file string) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return
	}
	base := filepath.Dir(abs)
	fix := func(p *string) {
		if p == nil || *p == "" || filepath.IsAbs(*p) {
			return
		}
		j := filepath.Join(base, *p)
		if strings.HasSuffix(*p, "/") {
			j += "/"
		}
		*p = j
	}
	fixList := func(l *[]string) {
		if l != nil {
			for i := range *l {
				fix(&(*l)[i])
			}
		}
	}
	ctx := func(c *rawContext) {
		fix(c.AuthUserScript)
		fix(c.AuthGroupScript)
		fix(c.AccessScript)
	}
	daemon := func(d *rawDaemon) {
		fix(d.Home)
		fixList(d.PythonPath)
		fix(d.PythonEggs)
	}
	if s := r.Server; s != nil {
		ctx(&s.rawContext)
		fix(s.PythonHome)
		fixList(s.PythonPath)
		fix(s.PythonEggs)
	}
	if v := r.VHost; v != nil {
		ctx(&v.rawContext)
	}
	if r.Embedded != nil {
		daemon(r.Embedded)
	}
	for _, d := range r.Daemon {
		daemon(d)
	}
	for _, im := range r.ImportScript {
		fix(im.Path)
	}
	for _, a := range r.ScriptAlias {
		ctx(&a.rawContext)
		fix(a.Path)
	}
	for _, a := range r.ScriptAliasMatch {
		ctx(&a.rawContext)
		fix(a.Path)
	}
	for _, l := range r.Location {
		ctx(&l.rawContext)
	}
	for _, d := range r.Directory {
		ctx(&d.rawContext)
		fix(d.Path)
	}
}
