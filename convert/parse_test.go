package convert

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestWords(t *testing.T) {
	for in, want := range map[string][]string{
		`WSGIScriptAlias /a "/srv/my app.wsgi"`: {"WSGIScriptAlias", "/a", "/srv/my app.wsgi"},
		`AuthName 'It''s'`:                      {"AuthName", "It", "s"},
		`AuthName "say \"hi\""`:                 {"AuthName", `say "hi"`},
		`RegEx ^/a\\b x\y`:                      {"RegEx", `^/a\b`, `x\y`},
		"  Tabs\tand   spaces  ":                {"Tabs", "and", "spaces"},
	} {
		got, err := words(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("words(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := words(`A "unterminated`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestReadLines(t *testing.T) {
	src := "# comment\n  \nWSGIDaemonProcess a \\\n    processes=2 \\\n threads=3\r\n  # indented comment\nLast # not a comment\n"
	got, err := readLines(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []logicalLine{{"WSGIDaemonProcess a     processes=2  threads=3", 3}, {"Last # not a comment", 7}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// write creates files under a temporary directory and returns it.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadErrors(t *testing.T) {
	for name, c := range map[string]struct {
		files map[string]string
		want  string
	}{
		"missing include": {map[string]string{"httpd.conf": "Listen 80\nInclude conf/missing.conf\n"},
			"httpd.conf:2: Include conf/missing.conf: no such file or directory"},
		"include glob matches nothing": {map[string]string{"httpd.conf": "Include conf.d/*.conf\n"},
			"httpd.conf:1: Include conf.d/*.conf: no file matches"},
		"unbalanced close": {map[string]string{"httpd.conf": "<VirtualHost *:80>\nServerName a\n</VirtualHost>\n</VirtualHost>\n"},
			"httpd.conf:4: </VirtualHost> without matching <VirtualHost> section"},
		"not closed": {map[string]string{"httpd.conf": "<VirtualHost *:80>\nServerName a\n"},
			"httpd.conf:1: <VirtualHost> is not closed"},
		"wrong close": {map[string]string{"httpd.conf": "<VirtualHost *:80>\n<Directory /a>\n</VirtualHost>\n"},
			"httpd.conf:3: </VirtualHost> closes <Directory> opened at"},
		"section across files": {map[string]string{"httpd.conf": "<VirtualHost *:80>\nInclude inc.conf\n", "inc.conf": "</VirtualHost>\n"},
			"inc.conf:1: </VirtualHost> without matching"},
		"nested vhost": {map[string]string{"httpd.conf": "<VirtualHost *:80>\n<VirtualHost *:81>\n</VirtualHost>\n</VirtualHost>\n"},
			"httpd.conf:2: <VirtualHost> cannot occur within <VirtualHost *:80>"},
		"include loop": {map[string]string{"httpd.conf": "Include httpd.conf\n"}, "include loop"},
		"bad quote":    {map[string]string{"httpd.conf": "ServerName \"a\n"}, "httpd.conf:1: unterminated \" quote"},
		"defines that double": {map[string]string{"httpd.conf": "Define A aa\n" + strings.Repeat("Define A ${A}${A}\n", 30)},
			"httpd.conf:20: the line grows past 1024 KiB as ${A} and the like are replaced"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := write(t, c.files)
			_, err := Convert(filepath.Join(dir, "httpd.conf"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one with %q", err, c.want)
			}
		})
	}
	if _, err := Convert(filepath.Join(t.TempDir(), "nope.conf")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestIncludes(t *testing.T) {
	dir := write(t, map[string]string{
		"httpd.conf": "ServerRoot /nonexistent\nDefine SITE b\nInclude conf.d/*.conf\nIncludeOptional none/*.conf\n" +
			"Include dir\n<IfDefine !SITE>\nWSGIPythonOptimize 2\n</IfDefine>\n<IfModule mod_wsgi.c>\nWSGIPythonOptimize 1\n</IfModule>\n",
		"conf.d/a.conf":  "<VirtualHost *:80>\nServerName a.example\nWSGIScriptAlias / /srv/${SITE}.wsgi\n</VirtualHost>\n",
		"conf.d/b.conf":  "<VirtualHost *:80>\nServerName b.example\n</VirtualHost>\n",
		"conf.d/c.txt":   "Broken <\n",
		"dir/sub/x.conf": "WSGIRestrictSignal Off\n",
	})
	res := convertFile(t, filepath.Join(dir, "httpd.conf"))
	cfg := load(t, res)
	if len(cfg.VHosts) != 2 || cfg.Server.RestrictSignal || cfg.Server.PythonOptimize != 1 {
		t.Errorf("vhosts %d, server %+v", len(cfg.VHosts), cfg.Server)
	}
	if !strings.Contains(res.Files[1].Text, `path = "/srv/b.wsgi"`) {
		t.Errorf("Define not expanded:\n%s", res.Files[1].Text)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0].String(), "httpd.conf:6: IfDefine: not translated (SITE is defined") {
		t.Errorf("notes: %v", res.Notes)
	}
}

func TestTOMLStrings(t *testing.T) {
	for _, s := range []string{"plain", `C:\dir`, `it's \ both`, "tab\there", "new\nline", `quote " and \`, "ünï", "\x7f\x01"} {
		var v map[string]any
		doc := tomlKey(s) + " = " + tomlString(s)
		if _, err := toml.Decode(doc, &v); err != nil {
			t.Errorf("%q: %s: %v", s, doc, err)
			continue
		}
		if v[s] != s {
			t.Errorf("%q: %s decodes as %q", s, doc, v[s])
		}
	}
}
