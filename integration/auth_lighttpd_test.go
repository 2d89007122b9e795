package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lighttpd 1.4 (Debian's package) as the front end, wsgifcgi as its
// FastCGI authorizer (docs/auth.md, "### lighttpd"): mod_fastcgi in
// "mode" => "authorizer" sends an FCGI_AUTHORIZER request for each request
// under the conditional, and on a 200 serves the file itself from the
// authorizer's "docroot". The snippets below are the ones the doc shows
// (TestLighttpdAuthorizerDocsShowTheTestedConfig keeps them in sync); the
// doc fills the {{...}} placeholders with lighttpdAuthDocValues.

// lighttpdAuthorizer is the lighttpd configuration of docs/auth.md.
const lighttpdAuthorizer = `server.modules += ( "mod_fastcgi" )
$HTTP["url"] =~ "^/(private|staff)/" {
    fastcgi.server = ( "" => ((
        "socket"      => "{{SOCK}}",
        "check-local" => "disable",
        "mode"        => "authorizer",
        "docroot"     => "{{DOCROOT}}",
    )))
}
`

// lighttpdAuthConf is the wsgifcgi configuration of docs/auth.md: {{DIR}}
// holds auth.wsgi (testdata/auth/auth.wsgi here).
const lighttpdAuthConf = `[server]
python-executable = "/usr/bin/python3"
socket-mode = "0666"     # or "0660" and a group lighttpd's user is in

[embedded]
{{USER}}
[[location]]
url = "/private"
auth-type = "Basic"
auth-name = "Members"
auth-user-script = "{{DIR}}/auth.wsgi"
require = ["valid-user"]

[[location]]
url = "/staff"
auth-type = "Basic"
auth-name = "Staff"
auth-user-script = "{{DIR}}/auth.wsgi"
auth-group-script = "{{DIR}}/auth.wsgi"
require = ["group staff"]
`

// lighttpdAuthDocValues are what docs/auth.md shows for the placeholders.
var lighttpdAuthDocValues = []string{
	"{{SOCK}}", "/run/wsgifcgi/fcgi.sock",
	"{{DOCROOT}}", "/srv/www",
	"{{DIR}}", "/srv/auth",
	"{{USER}}", "user = \"www-data\"\ngroup = \"www-data\"\n",
}

// Beside the documented setup, the test adds: the same authorizer for
// /blocked (allow_access says False: a 403) and /broken (an auth script
// that raises: a 500), and mod_cgi, so that a CGI script under /private
// shows the environment that the authorizer's Variable- headers make.
const (
	lighttpdAuthTestOnly = `server.modules += ( "mod_cgi" )
cgi.assign = ( ".cgi" => "" )
$HTTP["url"] =~ "^/(blocked|broken)/" {
    fastcgi.server = ( "" => ((
        "socket"      => "{{SOCK}}",
        "check-local" => "disable",
        "mode"        => "authorizer",
        "docroot"     => "{{DOCROOT}}",
    )))
}
`
	lighttpdAuthTestOnlyConf = `
[[location]]
url = "/blocked"
access-script = "{{DIR}}/auth.wsgi"

[[location]]
url = "/broken"
auth-type = "Basic"
auth-name = "Broken"
auth-user-script = "{{DIR}}/broken.wsgi"
require = ["valid-user"]
`
	// lighttpdEnvCGI prints what lighttpd puts in a CGI's environment
	// after the authorizer's 200, and the request body it gets.
	lighttpdEnvCGI = `#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
printf 'user=%s type=%s body=%s\n' "${REMOTE_USER-unset}" "${AUTH_TYPE-unset}" "$(head -c "${CONTENT_LENGTH:-0}")"
`
)

// lighttpdAuthSetup starts wsgifcgi with the documented configuration (and
// the test's additions) and lighttpd in front of it, with a docroot that
// holds one file per directory (its content is "NAME from docroot"). The
// harness's server.document-root holds the same files with other content,
// so a body tells which root lighttpd served it from.
func lighttpdAuthSetup(t *testing.T) (*server, *frontProc) {
	t.Helper()
	dir := testDir(t)
	authDir := filepath.Join(dir, "auth")
	if err := os.MkdirAll(authDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"auth.wsgi", "broken.wsgi"} {
		b, err := os.ReadFile(filepath.Join("testdata/auth", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(authDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	docroot := filepath.Join(dir, "www")
	docRootOfServer := filepath.Join(dir, "lighttpd", "htdocs") // startLighttpd's server.document-root
	for _, d := range []string{"private", "staff", "blocked", "broken"} {
		for root, what := range map[string]string{docroot: "docroot", docRootOfServer: "server.document-root"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, d, "x.txt"), []byte(d+" from "+what+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(docroot, "private", "env.cgi"), []byte(lighttpdEnvCGI), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fillFrontend(lighttpdAuthConf+lighttpdAuthTestOnlyConf, "{{DIR}}", authDir, "{{USER}}", workerUser())
	s := startServer(t, dir, conf)
	lconf := fillFrontend(lighttpdAuthorizer+lighttpdAuthTestOnly, "{{SOCK}}", s.sock, "{{DOCROOT}}", docroot)
	return s, startLighttpd(t, dir, lconf)
}

func TestLighttpdAuthorizerRecipe(t *testing.T) {
	s, l := lighttpdAuthSetup(t)

	// No credentials: wsgifcgi's 401, its challenge and its page reach the
	// client.
	code, hdr, body := request(t, l.url+"/private/x.txt", "", "")
	if code != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="Members"` || !strings.Contains(body, "<h1>Unauthorized</h1>") {
		t.Fatalf("no credentials: %d %q %q", code, hdr.Get("WWW-Authenticate"), body)
	}
	for _, c := range [][2]string{{"joe", "wrong"}, {"nobody-known", "x"}, {"joe", ""}} {
		code, hdr, body := request(t, l.url+"/private/x.txt", c[0], c[1])
		if code != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="Members"` || strings.Contains(body, "private from") {
			t.Fatalf("%s:%s: %d %q %q, want 401 with the challenge", c[0], c[1], code, hdr.Get("WWW-Authenticate"), body)
		}
	}
	// The right password: lighttpd serves the file itself, from the
	// authorizer's docroot (not from server.document-root).
	if code, _, body := request(t, l.url+"/private/x.txt", "joe", "secret"); code != 200 || body != "private from docroot\n" {
		t.Fatalf("joe:secret: %d %q, want the docroot's file", code, body)
	}
	// A missing file is lighttpd's 404, after the check.
	if code, _, _ := request(t, l.url+"/private/none.txt", "", ""); code != 401 {
		t.Fatalf("missing file without credentials: %d, want 401", code)
	}
	if code, _, _ := request(t, l.url+"/private/none.txt", "joe", "secret"); code != 404 {
		t.Fatalf("missing file as joe: %d, want 404", code)
	}

	// lighttpd's $HTTP["url"] matches the decoded, simplified path; wsgifcgi
	// routes by REQUEST_URI, the request's own form. Every form that
	// lighttpd sends to the authorizer must reach the /private context:
	// elsewhere no context applies, and the answer would be an allow.
	for _, p := range []string{"/priv%61te/x.txt", "//private/x.txt", "/private//x.txt", "/./private/x.txt",
		"/x/../private/x.txt", "/private/%2e/x.txt", "/x/%2e%2e/private/x.txt"} {
		if code, _, body := request(t, l.url+p, "", ""); code != 401 {
			t.Fatalf("%s without credentials: %d %q (wsgifcgi routed it elsewhere than lighttpd?)", p, code, body)
		}
		if code, _, body := request(t, l.url+p, "joe", "secret"); code != 200 || body != "private from docroot\n" {
			t.Fatalf("%s as joe: %d %q", p, code, body)
		}
	}
	// lighttpd decodes %2F for the conditional too; wsgifcgi refuses it
	// (allow-encoded-slashes is off) with its 404 page.
	for _, user := range []string{"", "joe"} {
		if code, _, body := request(t, l.url+"/private%2Fx.txt", user, "secret"); code != 404 || !strings.Contains(body, "<h1>Not Found</h1>") {
			t.Fatalf("/private%%2Fx.txt as %q: %d %q, want wsgifcgi's 404", user, code, body)
		}
	}

	// require group staff: a user who is not in the group gets wsgifcgi's
	// 401 with the challenge (as from Apache), not a 403.
	code, hdr, _ = request(t, l.url+"/staff/x.txt", "joe", "secret")
	if code != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="Staff"` {
		t.Fatalf("staff as joe (not in the group): %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	if code, _, _ := request(t, l.url+"/staff/x.txt", "ann", "wrong"); code != 401 {
		t.Fatalf("staff as ann, wrong password: %d", code)
	}
	if code, _, body := request(t, l.url+"/staff/x.txt", "ann", "pw"); code != 200 || body != "staff from docroot\n" {
		t.Fatalf("staff as ann: %d %q", code, body)
	}

	// allow_access False: wsgifcgi's 403 reaches the client as is.
	code, hdr, body = request(t, l.url+"/blocked/x.txt", "", "")
	if code != 403 || hdr.Get("WWW-Authenticate") != "" || !strings.Contains(body, "<h1>Forbidden</h1>") {
		t.Fatalf("blocked: %d %q %q, want wsgifcgi's 403 without a challenge", code, hdr.Get("WWW-Authenticate"), body)
	}
	// An auth script that raises: wsgifcgi's 500 reaches the client.
	if code, _, body := request(t, l.url+"/broken/x.txt", "joe", "secret"); code != 500 || strings.Contains(body, "from") {
		t.Fatalf("broken auth script: %d %q, want 500", code, body)
	}
	if !s.waitLog("auth backend down", 5e9) {
		t.Fatal("the raising auth script's traceback was not logged")
	}

	// The 200's Variable-REMOTE_USER and Variable-AUTH_TYPE become
	// REMOTE_USER and AUTH_TYPE in the environment of what handles the
	// request next (here a CGI script), and only there: the client never
	// sees them.
	code, hdr, body = request(t, l.url+"/private/env.cgi", "joe", "secret")
	if code != 200 || body != "user=joe type=Basic body=\n" {
		t.Fatalf("env.cgi as joe: %d %q", code, body)
	}
	for k := range hdr {
		if strings.HasPrefix(strings.ToLower(k), "variable-") {
			t.Fatalf("the client got the authorizer's %s header", k)
		}
	}
	// A request body: lighttpd sends the authorizer CONTENT_LENGTH but
	// keeps the body for the handler that runs after it.
	code, body = lighttpdPost(t, l.url+"/private/env.cgi", "", "", "a=1&b=2")
	if code != 401 {
		t.Fatalf("POST without credentials: %d %q", code, body)
	}
	if code, body = lighttpdPost(t, l.url+"/private/env.cgi", "joe", "secret", "a=1&b=2"); code != 200 || body != "user=joe type=Basic body=a=1&b=2\n" {
		t.Fatalf("POST as joe: %d %q", code, body)
	}

	// With wsgifcgi gone, lighttpd cannot ask: it refuses (503), and never
	// serves the file.
	s.stop()
	if code, _, body := request(t, l.url+"/private/x.txt", "joe", "secret"); code != 503 || strings.Contains(body, "private from") {
		t.Fatalf("authorizer down: %d %q, want lighttpd's 503", code, body)
	}
}

// lighttpdPost posts body, with Basic credentials if user is set.
func lighttpdPost(t *testing.T, url, user, pass, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// docs/auth.md shows the configurations that TestLighttpdAuthorizerRecipe
// runs, and no longer says that no test covers them.
func TestLighttpdAuthorizerDocsShowTheTestedConfig(t *testing.T) {
	b, err := os.ReadFile("../docs/auth.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name, block := range map[string]string{
		"lighttpd":      "```\n" + fillFrontend(lighttpdAuthorizer, lighttpdAuthDocValues...) + "```",
		"wsgifcgi TOML": "```toml\n" + fillFrontend(lighttpdAuthConf, lighttpdAuthDocValues...) + "```",
	} {
		if !strings.Contains(doc, block) {
			t.Errorf("docs/auth.md lacks the tested %s block:\n%s", name, block)
		}
	}
	if strings.Contains(doc, "do not cover this snippet") {
		t.Error("docs/auth.md still says that the tests do not cover the lighttpd snippet")
	}
}
