package groups

import (
	"path/filepath"
	"strings"
)

// handlerScript serves a request no alias matched: a [[directory]] with
// handler = "wsgi-script" (SetHandler) or matching extensions (AddHandler)
// runs the SCRIPT_FILENAME the front end sent, if it lies inside.
func (s *scope) handlerScript(p Params, path string, caseSensitive bool) (target, *RouteError) {
	var t target
	sf, _ := p.Get("SCRIPT_FILENAME")
	if sf == "" {
		return t, &RouteError{404, "no script-alias matches " + quoteTrunc(path) + " and no SCRIPT_FILENAME was sent"}
	}
	if strings.IndexByte(sf, 0) >= 0 {
		return t, &RouteError{400, "NUL byte in SCRIPT_FILENAME"}
	}
	if !filepath.IsAbs(sf) || hasDotDot(sf) {
		return t, &RouteError{403, "SCRIPT_FILENAME is not a clean absolute path: " + quoteTrunc(sf)}
	}
	file := filepath.Clean(sf)
	grant := s.grant(file)
	if grant == nil {
		return t, &RouteError{404, "no script-alias matches " + quoteTrunc(path) + " and no [[directory]] handler covers " + file}
	}
	mtime, rerr := checkScript(file, grant.path, grant.realDir)
	if rerr != nil {
		return t, rerr
	}
	t.file, t.mtime = file, mtime
	t.scriptName, t.pathInfo = splitAtScript(p, path, filepath.Base(file), caseSensitive)
	return t, nil
}

// grant finds the directory that makes file a WSGI script, with Apache's
// merging: the most specific handler setting decides; without a
// "wsgi-script" one, the most specific directory listing the file's
// extension does. Directories match lexically here; checkScript then makes
// sure the resolved file stays inside the granting one.
func (s *scope) grant(file string) *directory {
	for i := len(s.dirs) - 1; i >= 0; i-- {
		d := s.dirs[i]
		if d.handler != "" && inside(file, d.path) {
			if d.handler == "wsgi-script" {
				return d
			}
			break // "none": only extensions may still apply
		}
	}
	ext := filepath.Ext(file)
	if ext == "" {
		return nil
	}
	for i := len(s.dirs) - 1; i >= 0; i-- {
		d := s.dirs[i]
		if !inside(file, d.path) {
			continue
		}
		for _, e := range d.exts {
			if e == ext {
				return d
			}
		}
	}
	return nil
}

// splitAtScript gives SCRIPT_NAME/PATH_INFO for a handler script: the front
// end's PATH_INFO when it split the path, else the path up to the first
// segment that is the script's file name.
func splitAtScript(p Params, path, base string, caseSensitive bool) (scriptName, pathInfo string) {
	if pi, _ := p.Get("PATH_INFO"); strings.HasPrefix(pi, "/") {
		pi = mergeSlashes(pi)
		if len(pi) < len(path) && strings.HasSuffix(path, pi) {
			return path[:len(path)-len(pi)], pi
		}
	}
	for i := 1; i <= len(path); {
		j := strings.IndexByte(path[i:], '/')
		end := len(path)
		if j >= 0 {
			end = i + j
		}
		seg := path[i:end]
		if seg == base || !caseSensitive && strings.EqualFold(seg, base) {
			return path[:end], path[end:]
		}
		i = end + 1
	}
	return path, ""
}
