package gateway

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/groups"
)

// WSGIPythonEggs (server, or per daemon) reaches the worker's environment.
func TestPythonEggsInWorkerEnv(t *testing.T) {
	dir := t.TempDir()
	conf := `
[server]
python-executable = "/usr/bin/python3"
python-eggs = "/srv/eggs"
[embedded]
user = "nobody"
group = "nogroup"
[daemon.site1]
python-eggs = "/srv/site1/eggs"
`
	os.WriteFile(filepath.Join(dir, "00.toml"), []byte(conf), 0o644)
	cfg, err := groups.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ps := &pools{cfg: cfg, log: zerolog.Nop()}
	for _, c := range []struct {
		d    *groups.Daemon
		want string
	}{{cfg.Embedded, "/srv/eggs"}, {cfg.Daemons["site1"], "/srv/site1/eggs"}} {
		s, err := ps.spec(c.d, "")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(s.Worker.Env, "PYTHON_EGG_CACHE="+c.want) {
			t.Errorf("process group %q: PYTHON_EGG_CACHE=%s not in the worker's environment", c.d.Name, c.want)
		}
	}
}
