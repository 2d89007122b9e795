package groups

import "strings"

// request carries what the %{...} expansions of one request need.
type request struct {
	p          Params
	ctx        chain
	lookupEnv  func(string) (string, bool)
	name       string // NAME: the answering vhost's server-name, else [server] server-name, else SERVER_NAME
	host       string // host of the Host header, lower-cased ("" if absent)
	port       string // ":PORT" from the Host header, "" when absent or 80/443
	scriptName string
}

func newRequest(c *Config, sc *scope, p Params, ctx chain) request {
	r := request{p: p, ctx: ctx, lookupEnv: c.LookupEnv, name: sc.name}
	h, _ := p.Get("HTTP_HOST")
	host, port := splitHost(h)
	r.host = strings.ToLower(host)
	if port != "" && port != "80" && port != "443" {
		r.port = ":" + port
	}
	if r.name == "" {
		r.name = c.Server.ServerName
	}
	if r.name == "" {
		r.name, _ = p.Get("SERVER_NAME")
	}
	if r.name == "" {
		r.name = r.host
	}
	return r
}

// env is %{ENV:name}: the request's params, then the context's env, then
// the bridge's own environment.
func (r *request) env(name string) (string, bool) {
	if v, ok := r.p.Get(name); ok {
		return v, true
	}
	if v, ok := r.ctx.envVar(name); ok {
		return v, true
	}
	if r.lookupEnv != nil {
		return r.lookupEnv(name)
	}
	return "", false
}

// envRef returns X of "%{ENV:X}".
func envRef(s string) (string, bool) {
	if strings.HasPrefix(s, "%{ENV:") && strings.HasSuffix(s, "}") && len(s) > len("%{ENV:}") {
		return s[len("%{ENV:") : len(s)-1], true
	}
	return "", false
}

// applicationGroup expands WSGIApplicationGroup as mod_wsgi 4.9 does. The
// SCRIPT_NAME part of %{RESOURCE} is always lower-cased: the spec's parity
// fact (measured on 4.9.4, whose wsgi_script_name lower-cases it
// unconditionally); later mod_wsgi releases do it only with
// WSGICaseSensitivity Off, which is why case-sensitivity does not enter here.
// Only a whole-value %{...} expands; anything else is a literal name.
func (r *request) applicationGroup(s string) string {
	if !strings.HasPrefix(s, "%{") {
		return s
	}
	switch s {
	case "%{GLOBAL}":
		return ""
	case "%{SERVER}":
		return r.name + r.port
	case "%{RESOURCE}":
		return r.name + r.port + "|" + strings.ToLower(r.scriptName)
	case "%{HOST}":
		// mod_wsgi uses the request's host name (lower-cased by Apache),
		// falling back to the server name when the Host header is absent.
		if r.host == "" {
			return r.name + r.port
		}
		return r.host + r.port
	}
	if name, ok := envRef(s); ok {
		if v, ok := r.env(name); ok {
			// a value naming another expansion expands once more (not ENV: no loops)
			if strings.HasPrefix(v, "%{") && !strings.HasPrefix(v, "%{ENV:") {
				return r.applicationGroup(v)
			}
			return v
		}
	}
	return s // unset %{ENV:X} stays the literal text
}

// processGroup expands WSGIProcessGroup: "" is the embedded pool.
func (r *request) processGroup(s string) string {
	if s == "%{GLOBAL}" {
		return ""
	}
	if name, ok := envRef(s); ok {
		if v, ok := r.env(name); ok {
			if v == "%{GLOBAL}" {
				return ""
			}
			return v
		}
	}
	return s
}

// callableObject expands WSGICallableObject; like mod_wsgi, an unset
// %{ENV:X} falls back to "application" (a literal "%{ENV:X}" could never
// name a Python object).
func (r *request) callableObject(s string) string {
	if name, ok := envRef(s); ok {
		if v, ok := r.env(name); ok && v != "" {
			return v
		}
		return "application"
	}
	return s
}
