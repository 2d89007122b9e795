package gateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/groups"
)

// What a worker logs about a request (wsgi.errors lines, its traceback)
// names the request and its groups.
func TestRequestEventsNameTheRequest(t *testing.T) {
	var buf bytes.Buffer
	base := zerolog.New(&buf)
	rl := &requestLog{id: "abc-1", route: &groups.Route{ProcessGroup: "site", ApplicationGroup: "%{GLOBAL}"}}
	log := base.Hook(rl)
	log.Warn().Int("pid", 7).Msg("line from wsgi.errors")
	base.Info().Msg("the base logger is left alone")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.Bytes())
	}
	var ev map[string]any
	if err := json.Unmarshal(lines[0], &ev); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"request_id": "abc-1", "process_group": "site", "application_group": "%{GLOBAL}",
		"pid": float64(7), "message": "line from wsgi.errors"}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, ev[k], v, lines[0])
		}
	}
	if bytes.Contains(lines[1], []byte("request_id")) {
		t.Errorf("the base logger got the request's names: %s", lines[1])
	}
}
