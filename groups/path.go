package groups

import "strings"

// requestPath is the path routing uses: REQUEST_URI without query or
// fragment, %-decoded, dot segments resolved and repeated slashes merged (a
// trailing slash is kept). Without REQUEST_URI it is SCRIPT_NAME+PATH_INFO,
// which CGI front ends send already decoded. %2F is a 404 unless
// allowEncodedSlashes, which keeps it encoded; a bad escape or a NUL is a 400.
func requestPath(p Params, allowEncodedSlashes bool) (string, *RouteError) {
	uri, ok := p.Get("REQUEST_URI")
	decoded := false
	if !ok || uri == "" {
		sn, _ := p.Get("SCRIPT_NAME")
		pi, _ := p.Get("PATH_INFO")
		uri, decoded = sn+pi, true
	} else {
		if i := strings.IndexAny(uri, "?#"); i >= 0 {
			uri = uri[:i]
		}
		// absolute-form request target: http://host/path
		if i := strings.Index(uri, "://"); i > 0 && !strings.HasPrefix(uri, "/") {
			rest := uri[i+3:]
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				uri = rest[j:]
			} else {
				uri = "/"
			}
		}
	}
	if !strings.HasPrefix(uri, "/") {
		return "", &RouteError{400, "request path does not start with /: " + quoteTrunc(uri)}
	}
	if !decoded {
		var rerr *RouteError
		if uri, rerr = percentDecode(uri, allowEncodedSlashes); rerr != nil {
			return "", rerr
		}
	}
	if strings.IndexByte(uri, 0) >= 0 {
		return "", &RouteError{400, "NUL byte in the request path"}
	}
	return normalizePath(uri)
}

// percentDecode decodes %XX escapes; "%2F" is refused or kept as it came.
func percentDecode(s string, keepSlash bool) (string, *RouteError) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", &RouteError{400, "malformed %-escape in the request path"}
		}
		v := unhex(s[i+1])<<4 | unhex(s[i+2])
		if v == '/' {
			if !keepSlash {
				return "", &RouteError{404, "encoded slash (%2F) in the request path (allow-encoded-slashes is off)"}
			}
			b = append(b, s[i:i+3]...)
		} else {
			b = append(b, v)
		}
		i += 2
	}
	return string(b), nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// normalizePath merges repeated slashes and resolves "." and ".." segments
// (as Apache does before mapping); ".." above the root is a 400.
func normalizePath(p string) (string, *RouteError) {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p, nil // the common case: nothing to do, no allocation
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "":
			trailing = last
			continue
		case ".":
			trailing = last
			continue
		case "..":
			if len(out) == 0 {
				return "", &RouteError{400, "request path climbs above the root"}
			}
			out = out[:len(out)-1]
			trailing = last
			continue
		}
		out = append(out, s)
		trailing = false
	}
	r := "/" + strings.Join(out, "/")
	if trailing && r != "/" {
		r += "/"
	}
	return r, nil
}

// mergeSlashes collapses runs of "/" (configuration URLs, front-end PATH_INFO).
func mergeSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func quoteTrunc(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return "\"" + s + "\""
}
