package gateway

import (
	"testing"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// Caddy's fastcgi transport sends CONTENT_LENGTH "-1" for a chunked request
// body: that is no CONTENT_LENGTH, neither a 400 nor a value in the environ.
func TestUnknownContentLength(t *testing.T) {
	for _, v := range []string{"", "-1"} {
		if !unknownLength(v) {
			t.Errorf("unknownLength(%q) = false", v)
		}
	}
	for _, v := range []string{"0", "18", "-2", "x"} {
		if unknownLength(v) {
			t.Errorf("unknownLength(%q) = true", v)
		}
	}
	var e pyworker.Environ
	rt := &groups.Route{ScriptName: "", PathInfo: "/"}
	buildEnviron(&e, []bridge.Param{bp("REQUEST_METHOD", "POST"), bp("CONTENT_LENGTH", "-1")}, rt, environOptions{}, wsgiMeta{})
	if v, ok := decode(&e)["CONTENT_LENGTH"]; ok {
		t.Errorf("CONTENT_LENGTH -1 reached the environ as %q", v)
	}
}
