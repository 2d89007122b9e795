package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// maxAuthResult bounds what an auth function may return.
const maxAuthResult = 64 << 10

// workerAuth runs auth script functions in the embedded pool, in the
// application group of auth-application-group (%{GLOBAL} by default), as
// mod_wsgi runs them in an interpreter of its embedded processes.
type workerAuth struct{ g *Gateway }

func (a workerAuth) callAuth(ctx context.Context, ps []bridge.Param, rt *groups.Route, script, function string, args ...string) (json.RawMessage, error) {
	st := a.g.state.Load()
	p, err := st.pools.getKey(poolKey{"", rt.Auth.ApplicationGroup})
	if err != nil {
		return nil, err
	}
	call := *rt
	call.ScriptFilename, call.ProcessGroup, call.ApplicationGroup = script, "", rt.Auth.ApplicationGroup
	call.PassAuthorization = false
	js, _ := json.Marshal(args)
	var env pyworker.Environ
	if !buildEnviron(&env, ps, &call, environOptions{trustRemoteUser: st.cfg.Server.TrustRemoteUser}, wsgiMeta{}) {
		return nil, errors.New("a FastCGI param holds a NUL byte")
	}
	env.Add("mod_wsgi.auth_function", function)
	if !env.Add("mod_wsgi.auth_args", string(js)) {
		return nil, errors.New("credentials hold a NUL byte")
	}
	out := &resultSink{}
	res, _, err := p.Serve(ctx, &pyworker.Call{Environ: &env, Out: out, Log: a.g.log.With().Str("auth_script", script).Str("function", function).Logger()})
	if err != nil {
		return nil, err
	}
	if res.Status != 200 {
		return nil, fmt.Errorf("auth call answered %d", res.Status)
	}
	return out.body, nil
}

// resultSink keeps a small response body.
type resultSink struct{ body []byte }

func (s *resultSink) WriteHeader(int, []byte) error { return nil }
func (s *resultSink) Write(p []byte) error {
	if len(s.body)+len(p) > maxAuthResult {
		return errors.New("auth result too large")
	}
	s.body = append(s.body, p...)
	return nil
}
