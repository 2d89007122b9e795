package gateway

import (
	"strconv"
	"strings"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// params is the groups.Params view of a request's FastCGI params: for a
// repeated name the last one wins, as the spec says.
type params []bridge.Param

func (p params) Get(name string) (string, bool) {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i].Name == name {
			return p[i].Value, true
		}
	}
	return "", false
}

// environOptions are the server settings that shape every environ.
type environOptions struct {
	trustRemoteUser bool
}

// mod_wsgi values that travel with the environ; the worker converts none of them.
type wsgiMeta struct {
	requestID    string
	requestStart int64 // µs since the epoch
	daemon       bool
	restarts     int
	remoteUser   string // set by the bridge's own access control
	authType     string
}

// buildEnviron fills env with the string part of the WSGI environ: every
// FastCGI param as CGI gives it, corrected by the spec's rules, then the
// context's env and the mod_wsgi.* keys. It reports false when a value cannot
// be carried (a NUL byte), which is a 400.
func buildEnviron(env *pyworker.Environ, ps []bridge.Param, rt *groups.Route, opt environOptions, m wsgiMeta) bool {
	scheme := "http"
	// Repeated HTTP_* params are joined with ", ", any other repeated param
	// takes its last value, each at its first position.
	var merged []bridge.Param
	var rep repeats
	if !rep.find(ps) {
		merged = mergeRepeats(ps)
	}
	ok := true
	var hdrType, hdrLength string
	hasType, hasLength := false, false
	n := len(ps)
	if merged != nil {
		n = len(merged)
	}
	for i := 0; i < n; i++ {
		var p bridge.Param
		if merged != nil {
			p = merged[i]
		} else if m, first := rep.merged(ps, i); first {
			p = m
		} else {
			continue // a repeat, given at the name's first position
		}
		switch p.Name {
		case "HTTP_CONTENT_TYPE":
			// CGI carries these two headers only as CONTENT_TYPE and
			// CONTENT_LENGTH (nginx sends both forms).
			hdrType = p.Value
			continue
		case "HTTP_CONTENT_LENGTH":
			hdrLength = p.Value
			continue
		case "HTTPS":
			if v := strings.ToLower(p.Value); v == "on" || v == "1" {
				scheme = "https"
			}
			continue
		case "SCRIPT_NAME", "PATH_INFO", "SCRIPT_FILENAME":
			continue // the bridge's own routing sets these
		case "HTTP_PROXY":
			// httpoxy (CVE-2016-5385): a client's Proxy header would read as
			// the proxy setting of the application's outgoing requests.
			// mod_wsgi drops it too.
			continue
		case "HTTP_AUTHORIZATION":
			if !rt.PassAuthorization {
				continue
			}
		case "REMOTE_USER", "AUTH_TYPE":
			if !opt.trustRemoteUser {
				continue
			}
		case "CONTENT_TYPE", "CONTENT_LENGTH":
			if p.Value == "" || p.Name == "CONTENT_LENGTH" && unknownLength(p.Value) {
				continue
			}
			hasType = hasType || p.Name == "CONTENT_TYPE"
			hasLength = hasLength || p.Name == "CONTENT_LENGTH"
		}
		ok = env.Add(p.Name, p.Value) && ok
	}
	if !hasType && hdrType != "" {
		ok = env.Add("CONTENT_TYPE", hdrType) && ok
	}
	if !hasLength && hdrLength != "" {
		ok = env.Add("CONTENT_LENGTH", hdrLength) && ok
	}
	for _, e := range rt.Env {
		ok = env.Add(e.Name, e.Value) && ok
	}
	if m.remoteUser != "" {
		ok = env.Add("REMOTE_USER", m.remoteUser) && ok
		ok = env.Add("AUTH_TYPE", m.authType) && ok
	}
	ok = env.Add("SCRIPT_NAME", rt.ScriptName) && ok
	ok = env.Add("PATH_INFO", rt.PathInfo) && ok
	ok = env.Add("SCRIPT_FILENAME", rt.ScriptFilename) && ok
	env.Add("wsgi.url_scheme", scheme)
	env.Add("mod_wsgi.process_group", rt.ProcessGroup)
	env.Add("mod_wsgi.application_group", rt.ApplicationGroup)
	env.Add("mod_wsgi.callable_object", rt.CallableObject)
	env.Add("mod_wsgi.request_handler", "wsgi-script")
	env.Add("mod_wsgi.handler_script", "")
	env.Add("mod_wsgi.script_reloading", boolString(rt.ScriptReloading))
	env.Add("mod_wsgi.reload_mechanism", rt.ReloadMechanism)
	env.Add("mod_wsgi.script_name", rt.ScriptName)
	env.Add("mod_wsgi.path_info", rt.PathInfo)
	env.Add("mod_wsgi.request_id", m.requestID)
	start := strconv.FormatInt(m.requestStart, 10)
	env.Add("mod_wsgi.request_start", start)
	if m.daemon {
		env.Add("mod_wsgi.queue_start", start)
		env.Add("mod_wsgi.daemon_restarts", strconv.Itoa(m.restarts))
	}
	return ok
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// repeats finds the repeated names among a request's params without
// allocating: an open-addressed table of its few dozen names on the stack
// (nginx's stock fastcgi_params and the usual overrides of HTTP_HOST,
// SCRIPT_NAME and PATH_INFO make repeats the common case).
type repeats struct {
	slots [256]struct{ first, last, n uint8 } // n == 0: empty
	of    [maxRepeatParams]uint8              // param -> its name's slot
}

// maxRepeatParams is the most params the table takes; mergeRepeats does
// the rest.
const maxRepeatParams = 160

// find fills the table; false when there are too many params for it.
func (r *repeats) find(ps []bridge.Param) bool {
	if len(ps) > maxRepeatParams {
		return false
	}
	for i, p := range ps {
		h := uint32(2166136261)
		for j := 0; j < len(p.Name); j++ {
			h = (h ^ uint32(p.Name[j])) * 16777619
		}
		k := uint8(h)
		for r.slots[k].n != 0 && ps[r.slots[k].first].Name != p.Name {
			k++
		}
		e := &r.slots[k]
		if e.n == 0 {
			e.first = uint8(i)
		}
		e.last, e.n = uint8(i), e.n+1
		r.of[i] = k
	}
	return true
}

// merged is param i as the environ takes it; false for a repeat after the
// first of its name.
func (r *repeats) merged(ps []bridge.Param, i int) (bridge.Param, bool) {
	e := r.slots[r.of[i]]
	switch {
	case e.n == 1:
		return ps[i], true
	case int(e.first) != i:
		return bridge.Param{}, false
	case strings.HasPrefix(ps[i].Name, "HTTP_") && ps[i].Name != "HTTP_HOST":
		v := ps[i].Value
		for j := i + 1; j <= int(e.last); j++ {
			if ps[j].Name == ps[i].Name {
				v += ", " + ps[j].Value
			}
		}
		return bridge.Param{Name: ps[i].Name, Value: v}, true
	default:
		return bridge.Param{Name: ps[i].Name, Value: ps[e.last].Value}, true
	}
}

// mergeRepeats keeps the first position of each name. HTTP_HOST is not
// joined: HTTP allows one Host header, so a repeat is the front end's
// configuration overriding its stock param (nginx's README recipe
// `fastcgi_param HTTP_HOST $http_host` after `include fastcgi_params` sends
// both), and the last one wins, as it does for routing.
func mergeRepeats(ps []bridge.Param) []bridge.Param {
	out := make([]bridge.Param, 0, len(ps))
	at := make(map[string]int, len(ps))
	for _, p := range ps {
		i, dup := at[p.Name]
		switch {
		case !dup:
			at[p.Name] = len(out)
			out = append(out, p)
		case strings.HasPrefix(p.Name, "HTTP_") && p.Name != "HTTP_HOST":
			out[i].Value += ", " + p.Value
		default:
			out[i].Value = p.Value
		}
	}
	return out
}
