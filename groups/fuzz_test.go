package groups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad loads arbitrary conf.d files: a configuration or an error that
// names what is wrong, never a crash. A request routed through what loads
// must not crash either.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"../conf.d/00-server.toml", "../conf.d/10-hello.toml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "")
	}
	f.Add("[daemon.site]\nprocesses = 2\nthreads = 15\n[[script-alias]]\nurl = \"/app\"\npath = \"/srv/app.wsgi\"\nprocess-group = \"site\"\n",
		"[vhost]\nserver-name = \"a.example\"\nserver-alias = [\"*.a.example\"]\n[[script-alias-match]]\nurl = \"^/u/([^/]+)\"\npath = \"/home/$1/app.wsgi\"\n")
	f.Fuzz(func(t *testing.T, server, vhost string) {
		dir := t.TempDir()
		for name, text := range map[string]string{"00-server.toml": server, "10-vhost.toml": vhost} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c, err := Load(dir)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an error that says nothing")
			}
			return
		}
		for _, host := range []string{"a.example", "x.a.example", ""} {
			for _, uri := range []string{"/", "/app/x", "/u/bob/y"} {
				_, _ = c.Route(params{"HTTP_HOST": host, "SERVER_NAME": host, "REQUEST_URI": uri,
					"SCRIPT_NAME": "", "PATH_INFO": uri, "DOCUMENT_ROOT": dir})
			}
		}
	})
}
