package gateway

import (
	"fmt"
	"strings"

	"github.com/wsgifcgi/wsgifcgi/bridge"
)

// AuthorizeParam marks a responder request as an access check only (the
// nginx auth_request recipe: `fastcgi_param WSGIFCGI_AUTHORIZE 1;`): it is
// answered 200, 401 or 403 like an authorizer request and no application runs.
const AuthorizeParam = "WSGIFCGI_AUTHORIZE"

// isAuthorizerRequest says whether r asks for an access decision only.
func isAuthorizerRequest(r *bridge.Request) bool {
	if r.Role == bridge.RoleAuthorizer {
		return true
	}
	v, ok := params(r.Params).Get(AuthorizeParam)
	return ok && v != "" && v != "0"
}

// serveAuthorizer answers an access decision for the request the front end
// is about to serve: 200 (with Variable-REMOTE_USER/AUTH_TYPE for the front
// end to pass on), 401 with a challenge, 403, or 500.
func (g *Gateway) serveAuthorizer(w bridge.ResponseWriter, r *bridge.Request, rl *requestLog) int {
	ps := params(r.Params)
	rt, err := g.state.Load().cfg.Access(ps)
	if err != nil {
		rl.err = err
		return writeError(w, routeStatus(err))
	}
	rl.route = rt
	ctx := r.Context()
	var v verdict
	role, _ := ps.Get("FCGI_APACHE_ROLE")
	switch role {
	case "AUTHENTICATOR": // mod_fcgid FcgidAuthenticator: Apache parsed Basic credentials
		user, _ := ps.Get("REMOTE_USER")
		pass, _ := ps.Get("REMOTE_PASSWD")
		if rt.Auth.UserScript == "" {
			v = failed(fmt.Errorf("FcgidAuthenticator request for %s, which has no auth-user-script", rt.ScriptName))
			break
		}
		v = g.authenticate(ctx, ps, rt, credentials{scheme: "Basic", user: user, password: pass})
	case "AUTHORIZER": // mod_fcgid FcgidAuthorizer: Apache authenticated the user
		user, _ := ps.Get("REMOTE_USER")
		authType, _ := ps.Get("AUTH_TYPE")
		v = allowed(user, authType)
		if len(rt.Auth.Require) > 0 {
			v = g.checkRequire(ctx, ps, rt, v)
		}
	case "ACCESS_CHECKER": // mod_fcgid FcgidAccessChecker
		v = g.checkAccess(ctx, ps, rt)
	default: // FastCGI authorizer (lighttpd) or nginx auth_request
		v = g.accessControl(ctx, ps, rt)
	}
	if v.status == 0 && !printable(v.user+v.authType) {
		v = denied(400) // it would break the Variable- header
	}
	if v.status != 0 {
		rl.err = v.err
		return writeDenied(w, v)
	}
	var hdr strings.Builder
	hdr.WriteString("Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n")
	if v.user != "" {
		fmt.Fprintf(&hdr, "Variable-REMOTE_USER: %s\r\nVariable-AUTH_TYPE: %s\r\n", v.user, v.authType)
	}
	hdr.WriteString("\r\n")
	_, _ = w.Write([]byte(hdr.String()))
	return 200
}
