package gateway

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// decode turns the wire form back into a map (the last value of a name wins,
// as in the worker's dict()).
func decode(e *pyworker.Environ) map[string]string {
	parts := strings.Split(strings.TrimSuffix(string(e.Bytes()), "\x00"), "\x00")
	m := map[string]string{}
	for i := 0; i+1 < len(parts); i += 2 {
		m[parts[i]] = parts[i+1]
	}
	return m
}

func bp(name, value string) bridge.Param { return bridge.Param{Name: name, Value: value} }

func TestEnvironRules(t *testing.T) {
	ps := []bridge.Param{
		bp("REQUEST_METHOD", "POST"),
		bp("SCRIPT_NAME", "/index.php"), bp("SCRIPT_NAME", "/again"), // nginx sends it twice
		bp("PATH_INFO", "/from-nginx"),
		bp("HTTPS", "on"),
		bp("HTTP_AUTHORIZATION", "Basic eDp5"),
		bp("REMOTE_USER", "mallory"), bp("AUTH_TYPE", "Basic"),
		bp("CONTENT_TYPE", ""), bp("CONTENT_LENGTH", ""),
		bp("HTTP_CONTENT_TYPE", "text/plain"), bp("HTTP_CONTENT_LENGTH", "3"),
		bp("HTTP_X_A", "1"), bp("HTTP_X_A", "2"),
		bp("QUERY_STRING", "a=1"), bp("QUERY_STRING", "b=2"),
		bp("HTTP_PROXY", "http://evil.example:3128"), // httpoxy
	}
	rt := &groups.Route{ScriptName: "/app", PathInfo: "/x", ScriptFilename: "/srv/app.wsgi",
		ProcessGroup: "site1", ApplicationGroup: "example.com|/app", CallableObject: "application",
		ScriptReloading: true, ReloadMechanism: "process",
		Env: []groups.EnvVar{{Name: "PROCESS_GROUP", Value: "site1"}}}
	var e pyworker.Environ
	if !buildEnviron(&e, ps, rt, environOptions{}, wsgiMeta{requestID: "r1", requestStart: 42, daemon: true, restarts: 3}) {
		t.Fatal("buildEnviron refused")
	}
	env := decode(&e)
	want := map[string]string{
		"REQUEST_METHOD": "POST", "SCRIPT_NAME": "/app", "PATH_INFO": "/x", "SCRIPT_FILENAME": "/srv/app.wsgi",
		"wsgi.url_scheme": "https", "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3",
		"HTTP_X_A": "1, 2", "QUERY_STRING": "b=2", "PROCESS_GROUP": "site1",
		"mod_wsgi.process_group": "site1", "mod_wsgi.application_group": "example.com|/app",
		"mod_wsgi.callable_object": "application", "mod_wsgi.script_reloading": "1",
		"mod_wsgi.request_id": "r1", "mod_wsgi.request_start": "42", "mod_wsgi.queue_start": "42",
		"mod_wsgi.daemon_restarts": "3", "mod_wsgi.script_name": "/app", "mod_wsgi.path_info": "/x",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"HTTPS", "HTTP_AUTHORIZATION", "REMOTE_USER", "AUTH_TYPE", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_PROXY"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s present (%q), want removed", k, v)
		}
	}
	if n := strings.Count(string(e.Bytes()), "\x00SCRIPT_NAME\x00"); n != 1 {
		t.Errorf("SCRIPT_NAME appears %d times", n)
	}

	// pass-authorization and trust-remote-user keep what they name.
	e.Reset()
	rt.PassAuthorization = true
	buildEnviron(&e, ps, rt, environOptions{trustRemoteUser: true}, wsgiMeta{})
	env = decode(&e)
	if env["HTTP_AUTHORIZATION"] != "Basic eDp5" || env["REMOTE_USER"] != "mallory" || env["AUTH_TYPE"] != "Basic" {
		t.Errorf("with pass-authorization and trust-remote-user: %q %q %q", env["HTTP_AUTHORIZATION"], env["REMOTE_USER"], env["AUTH_TYPE"])
	}
	if _, ok := env["mod_wsgi.queue_start"]; ok {
		t.Error("queue_start outside a daemon group")
	}
}

func TestEnvironRefusesNUL(t *testing.T) {
	var e pyworker.Environ
	ps := []bridge.Param{bp("HTTP_X", "a\x00b")}
	if buildEnviron(&e, ps, &groups.Route{}, environOptions{}, wsgiMeta{}) {
		t.Fatal("a NUL in a param was accepted")
	}
}

// nginx's stock fastcgi_params send HTTP_HOST $host; the README recipe adds
// HTTP_HOST $http_host after it. HTTP has one Host header, so the repeat is
// an override (last wins), never two header lines to join.
func TestEnvironRepeatedHostIsAnOverride(t *testing.T) {
	var e pyworker.Environ
	ps := []bridge.Param{bp("HTTP_HOST", "localhost"), bp("HTTP_X_A", "1"), bp("HTTP_HOST", "localhost:8080"), bp("HTTP_X_A", "2")}
	buildEnviron(&e, ps, &groups.Route{}, environOptions{}, wsgiMeta{})
	if env := decode(&e); env["HTTP_HOST"] != "localhost:8080" || env["HTTP_X_A"] != "1, 2" {
		t.Errorf("HTTP_HOST %q HTTP_X_A %q, want localhost:8080 and 1, 2", env["HTTP_HOST"], env["HTTP_X_A"])
	}
}

// The table that finds repeated params agrees with mergeRepeats: repeated
// HTTP_* joined with ", " (HTTP_HOST excepted), others last-wins, each at
// its name's first position.
func TestRepeatsTableMatchesMerge(t *testing.T) {
	names := []string{"HTTP_HOST", "HTTP_ACCEPT", "SCRIPT_NAME", "PATH_INFO", "HTTP_X", "QUERY_STRING", "A", "B"}
	for seed := 0; seed < 500; seed++ {
		var ps []bridge.Param
		n := 1 + seed%40
		for i := 0; i < n; i++ {
			name := names[(seed*7+i*i*3+i)%len(names)]
			if (seed+i)%5 == 0 {
				name = fmt.Sprintf("N%d", i) // unique
			}
			ps = append(ps, bridge.Param{Name: name, Value: fmt.Sprint(i)})
		}
		var r repeats
		if !r.find(ps) {
			t.Fatal("table refused a short list")
		}
		var got []bridge.Param
		for i := range ps {
			if p, ok := r.merged(ps, i); ok {
				got = append(got, p)
			}
		}
		if want := mergeRepeats(ps); !reflect.DeepEqual(got, want) {
			t.Fatalf("params %v:\n got %v\nwant %v", ps, got, want)
		}
	}
}
