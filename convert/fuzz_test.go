package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzConvert runs the converter on arbitrary httpd configurations: it
// reports a syntax error or writes files that are valid TOML, and never
// crashes. Includes are left out (they would read the machine's files).
func FuzzConvert(f *testing.F) {
	for _, name := range []string{"edge.conf"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("WSGIDaemonProcess site user=www processes=2 threads=15 display-name=%{GROUP}\n" +
		"WSGIScriptAlias /app /srv/app.wsgi process-group=site application-group=%{GLOBAL}\n" +
		"<VirtualHost *:80>\nServerName a.example\nWSGIProcessGroup site\n</VirtualHost>\n")
	f.Add("Define EMPTY\n${EMPTY}\nServerName x\n") // a line of nothing once expanded
	f.Fuzz(func(t *testing.T, conf string) {
		if strings.Contains(strings.ToLower(conf), "include") {
			t.Skip()
		}
		path := filepath.Join(t.TempDir(), "httpd.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Convert(path)
		if err != nil {
			return
		}
		for _, file := range res.Files {
			var v map[string]any
			if _, err := toml.Decode(file.Text, &v); err != nil {
				t.Fatalf("%s is not TOML: %v\n%s", file.Name, err, file.Text)
			}
		}
	})
}
