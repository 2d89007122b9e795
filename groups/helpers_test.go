package groups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// params is a Params for tests.
type params map[string]string

func (p params) Get(n string) (string, bool) { v, ok := p[n]; return v, ok }

// writeTree creates files under dir; "$D" in contents is replaced by dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "$D", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadTree writes conf (under conf.d/) plus script files and loads conf.d.
func loadTree(t *testing.T, conf map[string]string, scripts ...string) (*Config, string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for n, b := range conf {
		files["conf.d/"+n] = b
	}
	for _, s := range scripts {
		files[s] = "def application(e, s): pass\n"
	}
	writeTree(t, dir, files)
	c, err := Load(filepath.Join(dir, "conf.d"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	c.LookupEnv = func(string) (string, bool) { return "", false }
	return c, dir
}

// routeErr returns the status of a failed Route (0 on success).
func routeStatus(t *testing.T, c *Config, p params) (*Route, int) {
	t.Helper()
	r, err := c.Route(p)
	if err != nil {
		re, ok := err.(*RouteError)
		if !ok {
			t.Fatalf("Route error %T %v, want *RouteError", err, err)
		}
		return nil, re.Status
	}
	return r, 0
}
