package gateway

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/internal/testlog"
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

// A reload logs, per running pool, whether it was kept, replaced or
// removed, and keeps exactly the pools whose settings did not change.
func TestReloadLogsEachPool(t *testing.T) {
	dir := t.TempDir()
	load := func(daemons string) *groups.Config {
		t.Helper()
		conf := "[server]\npython-executable = \"/bin/false\"\n[embedded]\nuser = \"nobody\"\ngroup = \"nogroup\"\n" + daemons
		os.WriteFile(filepath.Join(dir, "00.toml"), []byte(conf), 0o644)
		cfg, err := groups.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var log syncBuffer
	g, err := New(load("[daemon.a]\nthreads = 2\n[daemon.b]\nthreads = 2\n[daemon.c]\n"), zerolog.New(&log))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	old := g.state.Load().pools
	for _, name := range []string{"a", "b", "c"} {
		if _, err := old.getKey(poolKey{name, ""}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Reload(load("[daemon.a]\nthreads = 2\n[daemon.b]\nthreads = 3\n")); err != nil {
		t.Fatal(err)
	}
	for pool, msg := range map[string]string{
		"a|": "reload: pool kept, its settings did not change",
		"b|": "reload: pool replaced, its settings changed; its workers finish their requests",
		"c|": "reload: pool removed with its process group; its workers finish their requests",
	} {
		if want := `"pool":"` + pool + `","workers":0,"message":"` + msg + `"`; !strings.Contains(log.String(), want) {
			t.Errorf("no %s in the log:\n%s", want, log.String())
		}
	}
	next := g.state.Load().pools
	if next.m[poolKey{"a", ""}] != old.m[poolKey{"a", ""}] || next.m[poolKey{"b", ""}] != nil || next.m[poolKey{"c", ""}] != nil {
		t.Errorf("after the reload: %v (before: %v)", next.m, old.m)
	}
}

type syncBuffer = testlog.Buffer

// Lending needs one identity among the groups that can run.
func TestSameIdentity(t *testing.T) {
	d := func(name, user, group string) *groups.Daemon {
		return &groups.Daemon{Name: name, User: user, Group: group}
	}
	for _, c := range []struct {
		name           string
		ds             []*groups.Daemon
		restrict, root bool
		want           bool
	}{
		{"one group", []*groups.Daemon{d("", "www", "www"), d("a", "www", "www")}, false, true, true},
		{"two users", []*groups.Daemon{d("", "www", "www"), d("a", "www", "www"), d("b", "bob", "bob")}, false, true, false},
		{"two groups of one user", []*groups.Daemon{d("a", "www", "www"), d("b", "www", "")}, false, true, false},
		{"embedded of another user", []*groups.Daemon{d("", "nobody", "nogroup"), d("a", "www", "www")}, false, true, false},
		{"restricted embedded", []*groups.Daemon{d("", "nobody", "nogroup"), d("a", "www", "www")}, true, true, true},
		{"embedded without a user never runs as root", []*groups.Daemon{d("", "", ""), d("a", "www", "www")}, false, true, true},
		{"not root: all are the bridge's user", []*groups.Daemon{d("a", "www", "www"), d("b", "bob", "bob")}, false, false, true},
	} {
		if got := sameIdentity(c.ds, c.restrict, c.root); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
