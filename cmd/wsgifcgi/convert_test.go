package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgifcgi/wsgifcgi/groups"
)

const twoSites = "../../convert/testdata/ref/two-sites.conf"

func TestConvertStdout(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runConvert([]string{twoSites}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"# ==> 10-www.site1.com.toml <==", `[daemon."www.site1.com"]`, `process-group = "www.site2.com"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errb.String(), "two-sites.conf:6: CustomLog: not translated (") {
		t.Errorf("stderr: %s", errb.String())
	}
	if strings.Contains(errb.String(), "warning") {
		t.Errorf("the output does not load cleanly: %s", errb.String())
	}
}

func TestConvertDir(t *testing.T) {
	for _, args := range [][]string{{"-o", "DIR", twoSites}, {twoSites, "-o", "DIR"}} {
		dir := filepath.Join(t.TempDir(), "conf.d")
		for i := range args {
			if args[i] == "DIR" {
				args[i] = dir
			}
		}
		var out, errb bytes.Buffer
		if code := runConvert(args, &out, &errb); code != 0 || out.Len() != 0 {
			t.Fatalf("%v: exit %d, stdout %q, stderr %s", args, code, out.String(), errb.String())
		}
		names, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
		if len(names) != 2 || filepath.Base(names[0]) != "10-www.site1.com.toml" {
			t.Errorf("files: %v", names)
		}
		cfg, err := groups.Load(dir)
		if err != nil || len(cfg.VHosts) != 2 {
			t.Fatalf("load: %v", err)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(conf, []byte("Include missing.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{conf}, 1, "httpd.conf:1: Include missing.conf: no such file or directory"},
		{[]string{filepath.Join(dir, "none.conf")}, 1, "none.conf"},
		{nil, 2, "usage"},
		{[]string{"a", "b"}, 2, "usage"},
	} {
		var out, errb bytes.Buffer
		if code := runConvert(c.args, &out, &errb); code != c.code || !strings.Contains(errb.String(), c.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q; want %d with %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
}

// Warnings name the files convert wrote with -o DIR (not a temporary copy
// that is gone), or on stdout the names that head each file there.
func TestConvertWarningsNameTheOutputFiles(t *testing.T) {
	src := t.TempDir()
	conf := filepath.Join(src, "httpd.conf")
	// /dav after / can never match (a groups warning); the :80/:443 pair
	// keeps its ports (a convert warning).
	os.WriteFile(conf, []byte(`WSGIScriptAlias / /srv/site.wsgi
WSGIScriptAlias /dav /srv/dav.wsgi
<VirtualHost *:80>
ServerName pair.example.com
</VirtualHost>
<VirtualHost *:443>
ServerName pair.example.com
</VirtualHost>
`), 0o644)
	dir := filepath.Join(t.TempDir(), "conf.d")
	var out, errb bytes.Buffer
	if code := runConvert([]string{conf, "-o", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"warning: " + filepath.Join(dir, "00-server.toml") + ":", `"/dav" can never match`,
		"port = 80 is kept in " + filepath.Join(dir, "10-pair.example.com_80.toml"),
		"wrote " + filepath.Join(dir, "00-server.toml"),
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("-o: stderr lacks %q:\n%s", want, errb.String())
		}
	}
	if strings.Contains(errb.String(), os.TempDir()+"/wsgifcgi-convert-") {
		t.Errorf("-o: a warning names a temporary file:\n%s", errb.String())
	}

	out.Reset()
	errb.Reset()
	if code := runConvert([]string{conf}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "warning: 00-server.toml:") || strings.Contains(errb.String(), "wsgifcgi-convert-") ||
		!strings.Contains(out.String(), "# ==> 00-server.toml <==") {
		t.Errorf("stdout: warnings should name 00-server.toml:\n%s", errb.String())
	}
}
