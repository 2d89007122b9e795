package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/groups"
)

// The access control of a context (WSGIAccessScript, WSGIAuthUserScript,
// WSGIAuthGroupScript with AuthType/AuthName/Require), enforced for a
// responder request before the application runs, and answered alone for an
// authorizer request (FastCGI FCGI_AUTHORIZER, mod_fcgid's
// FCGI_APACHE_ROLE, nginx auth_request).

// authCaller runs one function of an auth script in a worker and returns
// its JSON-encoded result.
type authCaller interface {
	callAuth(ctx context.Context, ps []bridge.Param, rt *groups.Route, script, function string, args ...string) (json.RawMessage, error)
}

// verdict is the outcome of access control.
type verdict struct {
	status    int    // 0: allowed; else 401, 403 or 500
	challenge string // WWW-Authenticate with a 401
	user      string // REMOTE_USER when authenticated
	authType  string // AUTH_TYPE when authenticated
	err       error  // why a 500 (logged, never shown)
}

func allowed(user, authType string) verdict { return verdict{user: user, authType: authType} }
func denied(status int) verdict             { return verdict{status: status} }
func failed(err error) verdict              { return verdict{status: 500, err: err} }

// accessControl decides a request by the route's context: access script,
// then authentication, then Require. An error in a script is a 500, never
// an accidental allow.
func (g *Gateway) accessControl(ctx context.Context, ps params, rt *groups.Route) verdict {
	a := &rt.Auth
	if v := g.checkAccess(ctx, ps, rt); v.status != 0 || v.err != nil {
		return v
	}
	if len(a.Require) == 0 {
		return verdict{}
	}
	if a.Type == "" || a.UserScript == "" {
		return failed(fmt.Errorf("require %q without auth-type and auth-user-script", a.Require))
	}
	hdr, _ := ps.Get("HTTP_AUTHORIZATION")
	cred, ok := parseAuthorization(hdr)
	if !ok || !strings.EqualFold(cred.scheme, a.Type) {
		return g.challenge(a, false)
	}
	v := g.authenticate(ctx, ps, rt, cred)
	if v.status != 0 || v.err != nil {
		return v
	}
	return g.checkRequire(ctx, ps, rt, v)
}

func (g *Gateway) checkAccess(ctx context.Context, ps params, rt *groups.Route) verdict {
	if rt.Auth.AccessScript == "" {
		return verdict{}
	}
	host, ok := ps.Get("REMOTE_HOST")
	if !ok || host == "" {
		host, _ = ps.Get("REMOTE_ADDR")
	}
	var res *bool
	if err := g.call(ctx, ps, rt, rt.Auth.AccessScript, "allow_access", &res, host); err != nil {
		return failed(err)
	}
	if res != nil && !*res {
		return denied(403)
	}
	return verdict{} // True, or None: no opinion
}

func (g *Gateway) challenge(a *groups.Auth, stale bool) verdict {
	v := denied(401)
	if strings.EqualFold(a.Type, "Digest") {
		v.challenge = g.digest.challenge(a.Name, stale)
	} else {
		v.challenge = fmt.Sprintf(`Basic realm="%s"`, quoteEscape(a.Name))
	}
	return v
}

// authenticate checks credentials with the user script.
func (g *Gateway) authenticate(ctx context.Context, ps params, rt *groups.Route, c credentials) verdict {
	a := &rt.Auth
	if c.scheme == "Basic" {
		var res *bool
		if err := g.call(ctx, ps, rt, a.UserScript, "check_password", &res, c.user, c.password); err != nil {
			return failed(err)
		}
		if res == nil || !*res {
			return g.challenge(a, false)
		}
		return allowed(c.user, "Basic")
	}
	var ha1 *string
	if err := g.call(ctx, ps, rt, a.UserScript, "get_realm_hash", &ha1, c.user, a.Name); err != nil {
		return failed(err)
	}
	if ha1 == nil {
		return g.challenge(a, false)
	}
	method, _ := ps.Get("REQUEST_METHOD")
	uri, _ := ps.Get("REQUEST_URI")
	ok, stale := g.digest.verify(c, a.Name, method, uri, strings.ToLower(*ha1))
	if !ok {
		return g.challenge(a, stale)
	}
	return allowed(c.user, "Digest")
}

// checkRequire applies Require lines to an authenticated user; any one line
// satisfied is enough (Apache 2.4's implicit RequireAny).
func (g *Gateway) checkRequire(ctx context.Context, ps params, rt *groups.Route, v verdict) verdict {
	var groupsOf []string
	fetched := false
	for _, line := range rt.Auth.Require {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "valid-user":
			return v
		case f[0] == "user":
			for _, u := range f[1:] {
				if u == v.user {
					return v
				}
			}
		case f[0] == "group":
			if !fetched {
				if rt.Auth.GroupScript == "" {
					return failed(errors.New(`"require group" without auth-group-script`))
				}
				var res *[]string
				if err := g.call(ctx, ps, rt, rt.Auth.GroupScript, "groups_for_user", &res, v.user); err != nil {
					return failed(err)
				}
				if res != nil {
					groupsOf = *res
				}
				fetched = true
			}
			for _, want := range f[1:] {
				for _, have := range groupsOf {
					if want == have {
						return v
					}
				}
			}
		}
	}
	// Authenticated but not allowed: Apache answers 401 for auth-based Require.
	return g.challenge(&rt.Auth, false)
}

// call runs function of script and decodes its result into out.
func (g *Gateway) call(ctx context.Context, ps params, rt *groups.Route, script, function string, out any, args ...string) error {
	raw, err := g.auth.callAuth(ctx, ps, rt, script, function, args...)
	if err != nil {
		return fmt.Errorf("%s() of %s: %w", function, script, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s() of %s returned %s: want %s", function, script, raw, wantType(function))
	}
	return nil
}

func wantType(function string) string {
	switch function {
	case "get_realm_hash":
		return "a string or None"
	case "groups_for_user":
		return "a list of strings"
	default:
		return "True, False or None"
	}
}
