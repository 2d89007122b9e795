package groups

import (
	"errors"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// refRe finds $N references in a script-alias-match path.
var refRe = regexp.MustCompile(`\$([0-9])`)

// alias is one [[script-alias]] or [[script-alias-match]].
type alias struct {
	url       string // as configured (for the table), slashes merged
	mount     string // SCRIPT_NAME of the mount: url without a trailing slash, "" at the root
	needSlash bool   // url ends in "/" (not the root): "/wsgi" alone does not match "/wsgi/"
	path      string // script file, directory, or template with $N
	dirForm   bool   // the next URL segment names a script inside path
	realDir   string // dirForm: path with symlinks resolved at load ("" if it did not exist)
	re        *regexp.Regexp
	ctx       *settings
	where     string // FILE:LINE
	key       string // script-alias[N] or script-alias-match[N], for messages
}

// target is a resolved script: the file and the SCRIPT_NAME/PATH_INFO split.
type target struct {
	file       string
	mtime      int64 // of file, when routing checked it (ns since the epoch)
	scriptName string
	pathInfo   string
	alias      *alias
}

// resolve maps path (decoded, normalised) through a; ok false: no match.
func (a *alias) resolve(path string) (t target, ok bool, rerr *RouteError) {
	if a.re != nil {
		return a.resolveMatch(path)
	}
	if !strings.HasPrefix(path, a.mount) {
		return t, false, nil
	}
	rest := path[len(a.mount):]
	if rest == "" && a.needSlash || rest != "" && rest[0] != '/' {
		return t, false, nil // matches only at a "/" boundary
	}
	t.alias = a
	if !a.dirForm {
		t.file, t.scriptName, t.pathInfo = a.path, a.mount, rest
		if a.needSlash {
			// A file mounted with a trailing slash: mod_wsgi appends what
			// follows the mount to the file name, so only the mount itself
			// names the script (SCRIPT_NAME "/trail/", PATH_INFO "").
			if rest != "/" {
				return t, true, &RouteError{404, "script not found: " + a.path + rest[1:] + " (" + a.url + " at " + a.where + " mounts a file)"}
			}
			t.scriptName, t.pathInfo = a.url, ""
		}
		t.mtime, rerr = checkScript(t.file, "", "")
		return t, true, rerr
	}
	seg, after := rest, ""
	if seg != "" {
		seg = seg[1:]
	}
	if i := strings.IndexByte(seg, '/'); i >= 0 {
		seg, after = seg[:i], seg[i:]
	}
	if seg == "" {
		// The directory itself: Apache answers 403 for a directory without an index.
		return t, true, &RouteError{403, "directory listing refused: " + a.url + " mounts the directory " + a.path + " (" + a.where + "); name a script under it"}
	}
	t.file = filepath.Join(a.path, seg)
	t.scriptName, t.pathInfo = a.mount+"/"+seg, after
	t.mtime, rerr = checkScript(t.file, a.path, a.realDir)
	return t, true, rerr
}

// resolveMatch is WSGIScriptAliasMatch: $N of the match go into the path;
// SCRIPT_NAME is the path up to the end of the match.
func (a *alias) resolveMatch(path string) (t target, ok bool, rerr *RouteError) {
	m := a.re.FindStringSubmatchIndex(path)
	if m == nil {
		return t, false, nil
	}
	file := refRe.ReplaceAllStringFunc(a.path, func(ref string) string {
		n := int(ref[1] - '0')
		if 2*n+1 < len(m) && m[2*n] >= 0 {
			return path[m[2*n]:m[2*n+1]]
		}
		return ""
	})
	t.alias = a
	t.scriptName, t.pathInfo = path[:m[1]], path[m[1]:]
	if len(t.scriptName) > 0 && t.scriptName[len(t.scriptName)-1] == '/' {
		// a regex that eats the slash would give a SCRIPT_NAME ending in "/"
		t.scriptName, t.pathInfo = t.scriptName[:len(t.scriptName)-1], "/"+t.pathInfo
	}
	if hasDotDot(file) {
		return t, true, &RouteError{403, "script path escapes: " + file}
	}
	t.file = filepath.Clean(file)
	t.mtime, rerr = checkScript(t.file, "", "")
	return t, true, rerr
}

// checkScript requires a regular file and returns its modification time.
// With dir set, the file with its symlinks resolved must also stay inside
// dir (resolved: realDir, or now if the directory did not exist at load).
func checkScript(file, dir, realDir string) (int64, *RouteError) {
	var fi rawio.Info
	var err error
	if dir == "" {
		fi, err = rawio.Stat(file)
	} else {
		if realDir == "" {
			if realDir = realDirOf(dir); realDir == "" {
				return 0, &RouteError{404, "script directory not found: " + dir}
			}
		}
		var real string
		if real, fi, err = resolve(file); err == nil && !inside(real, realDir) {
			return 0, &RouteError{403, "script escapes its directory " + dir + ": " + file}
		}
	}
	if err != nil {
		return 0, statError(file, err)
	}
	if !fi.Mode.IsRegular() {
		return 0, &RouteError{404, "script is not a regular file: " + file}
	}
	return fi.Mtime, nil
}

// resolve is filepath.EvalSymlinks(file) and the file's Info. For a clean
// absolute path without a link on the way, the usual case, it is a walk of
// direct lstat calls (rawio), the last of which is the file's own.
func resolve(file string) (string, rawio.Info, error) {
	if filepath.IsAbs(file) && filepath.Clean(file) == file {
		for i := 1; ; {
			end := len(file)
			if j := strings.IndexByte(file[i:], '/'); j >= 0 {
				end = i + j
			}
			fi, err := rawio.Lstat(file[:end])
			if err != nil {
				return "", fi, err
			}
			if fi.Mode&fs.ModeSymlink != 0 {
				break
			}
			if end == len(file) {
				return file, fi, nil
			}
			i = end + 1
		}
	}
	real, err := filepath.EvalSymlinks(file)
	if err != nil {
		return "", rawio.Info{}, err
	}
	fi, err := rawio.Stat(real)
	return real, fi, err
}

// statError: missing (or a path through a file) is 404, anything else 403.
func statError(file string, err error) *RouteError {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return &RouteError{404, "script not found: " + file}
	}
	return &RouteError{403, "script not accessible: " + err.Error()}
}

// inside reports whether path is dir or lies under it (both clean, absolute).
func inside(path, dir string) bool {
	if dir == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == dir || strings.HasPrefix(path, dir) && path[len(dir)] == '/'
}

// hasDotDot reports a ".." segment.
func hasDotDot(p string) bool {
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return true
		}
	}
	return false
}

// realDirOf resolves symlinks of a configured directory; at request time an
// unresolvable one (created after load) is resolved again.
func realDirOf(dir string) string {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return r
	}
	return ""
}
