package integration

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Apache 2.4 with mod_fcgid as the front end, wsgifcgi as its FastCGI
// authenticator, authorizer and access checker (docs/auth.md): mod_fcgid
// spawns wsgifcgi itself, with the listening socket on fd 0, and Apache
// serves the protected files.

// apacheFcgidAuth is the Apache configuration of docs/auth.md;
// {{WRAPPER}} is the wrapper script that execs wsgifcgi. mod_auth_basic
// sends the challenge to a request without credentials (mod_fcgid's
// authenticator sends none then); loaded before mod_fcgid, as in Debian's
// module order, it must pass credentials on: AuthBasicAuthoritative Off.
const apacheFcgidAuth = `
FcgidMaxProcessesPerClass 4
<Location />
    FcgidAccessChecker {{WRAPPER}}
</Location>
<Location /private>
    AuthType Basic
    AuthName "Members"
    AuthBasicAuthoritative Off
    LogLevel auth_basic:crit authn_file:crit
    FcgidAuthenticator {{WRAPPER}}
    Require valid-user
</Location>
<Location /staff>
    AuthType Basic
    AuthName "Staff"
    AuthBasicAuthoritative Off
    LogLevel auth_basic:crit authn_file:crit
    FcgidAuthenticator {{WRAPPER}}
    FcgidAuthorizer {{WRAPPER}}
    Require valid-user
</Location>
`

// apacheWrapper is the program mod_fcgid runs (docs/auth.md).
const apacheWrapper = `#!/bin/sh
exec {{BIN}} serve -c {{DIR}}/conf.d
`

// apacheAuthConf is the wsgifcgi configuration of docs/auth.md; {{DIR}}
// holds auth.wsgi and app.wsgi. mod_fcgid gives each instance one request
// at a time, hence one thread; the instance runs as Apache's user, so no
// [embedded] user.
const apacheAuthConf = `[server]
python-executable = "/usr/bin/python3"
access-script = "{{DIR}}/auth.wsgi"

[embedded]
threads = 1

[[script-alias]]
url = "/"
path = "{{DIR}}/app.wsgi"

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

// apacheTestOnly adds, beside the documented setup, a location whose auth
// script raises.
const (
	apacheTestOnly = `
<Location /broken>
    AuthType Basic
    AuthName "Broken"
    AuthBasicAuthoritative Off
    LogLevel auth_basic:crit authn_file:crit
    FcgidAuthenticator {{WRAPPER}}
    Require valid-user
</Location>
`
	apacheTestOnlyConf = `
[[location]]
url = "/broken"
auth-user-script = "{{DIR}}/broken.wsgi"
`
)

// apacheAuthSetup writes the scripts, the wsgifcgi configuration, the
// wrapper and a document root with one file per directory (its content is
// the directory's name), and starts Apache.
func apacheAuthSetup(t *testing.T) *apache {
	t.Helper()
	dir := testDir(t)
	for _, f := range []string{"auth.wsgi", "broken.wsgi", "app.wsgi"} {
		b, err := os.ReadFile(filepath.Join("testdata/auth", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fill := strings.NewReplacer("{{DIR}}", dir, "{{BIN}}", binPath, "{{WRAPPER}}", filepath.Join(dir, "wsgifcgi-auth")).Replace
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "00-auth.toml"), []byte(fill(apacheAuthConf+apacheTestOnlyConf)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "wsgifcgi-auth"), []byte(fill(apacheWrapper)), 0o755); err != nil {
		t.Fatal(err)
	}
	docroot := filepath.Join(dir, "htdocs")
	for _, d := range []string{"private", "staff", "blocked", "open", "broken"} {
		if err := os.MkdirAll(filepath.Join(docroot, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(docroot, d, "x.txt"), []byte(d+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The check the wrapper's wsgifcgi will pass, done here (as the user
	// Apache runs it as) so that a bad configuration fails the test with its
	// message, not with 401s.
	if code, out, errOut := runCheckDir(t, filepath.Join(dir, "conf.d")); code != 0 {
		t.Fatalf("wsgifcgi check: exit %d\n%s%s", code, out, errOut)
	}
	return startApache(t, dir, docroot, fill(apacheFcgidAuth+apacheTestOnly),
		"authn_core", "authn_file", "authz_core", "authz_user", "auth_basic", "fcgid")
}

func runCheckDir(t *testing.T, confDir string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	cmd := exec.Command(binPath, "check", "-c", confDir)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobodyCredential(t)}
	}
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

func TestApacheFcgidAuthenticatorAuthorizerAccessChecker(t *testing.T) {
	a := apacheAuthSetup(t)

	// FcgidAuthenticator: check_password decides; Apache sends the challenge
	// of its own AuthName.
	code, hdr, _ := request(t, a.url+"/private/x.txt", "", "")
	if code != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="Members"` {
		t.Fatalf("no credentials: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	for _, c := range [][2]string{{"joe", "wrong"}, {"nobody-known", "x"}, {"joe", ""}} {
		if code, _, _ := request(t, a.url+"/private/x.txt", c[0], c[1]); code != 401 {
			t.Fatalf("%s:%s: %d, want 401", c[0], c[1], code)
		}
	}
	if code, _, body := request(t, a.url+"/private/x.txt", "joe", "secret"); code != 200 || body != "private\n" {
		t.Fatalf("joe:secret: %d %q", code, body)
	}
	// REQUEST_URI is what wsgifcgi routes by: the encoded and the
	// slash-doubled forms reach the /private context, as Apache's Location.
	for _, p := range []string{"/priv%61te/x.txt", "//private/x.txt"} {
		if code, _, _ := request(t, a.url+p, "", ""); code != 401 {
			t.Fatalf("%s without credentials: %d", p, code)
		}
		if code, _, body := request(t, a.url+p, "joe", "secret"); code != 200 || body != "private\n" {
			t.Fatalf("%s as joe: %d %q (wsgifcgi routed it elsewhere than Apache?)", p, code, body)
		}
	}

	// FcgidAuthorizer: require group staff, with groups_for_user.
	code, hdr, _ = request(t, a.url+"/staff/x.txt", "joe", "secret")
	if code != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="Staff"` {
		t.Fatalf("staff as joe (not in the group): %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	if code, _, _ := request(t, a.url+"/staff/x.txt", "ann", "wrong"); code != 401 {
		t.Fatalf("staff as ann, wrong password: %d", code)
	}
	if code, _, body := request(t, a.url+"/staff/x.txt", "ann", "pw"); code != 200 || body != "staff\n" {
		t.Fatalf("staff as ann: %d %q", code, body)
	}
	if !a.waitFile(a.accessLog, "ann 200 /staff/x.txt\n", 5e9) {
		t.Fatalf("Apache did not log ann as the user:\n%s", a.read(a.accessLog))
	}

	// FcgidAccessChecker: allow_access False is wsgifcgi's 403, which
	// mod_fcgid turns into a 401 (without a challenge) for the client.
	code, hdr, _ = request(t, a.url+"/blocked/x.txt", "", "")
	if code != 401 || hdr.Get("WWW-Authenticate") != "" {
		t.Fatalf("blocked: %d %q, want mod_fcgid's 401 without challenge", code, hdr.Get("WWW-Authenticate"))
	}
	if !a.waitFile(a.errorLog, "to access /blocked/x.txt failed, reason: script returned status 403", 5e9) {
		t.Fatal("wsgifcgi did not answer 403 to the access check of /blocked")
	}
	if code, _, body := request(t, a.url+"/open/x.txt", "", ""); code != 200 || body != "open\n" {
		t.Fatalf("open: %d %q", code, body)
	}

	// An auth script that raises is a 500 from wsgifcgi: never an allow.
	if code, _, _ := request(t, a.url+"/broken/x.txt", "joe", "secret"); code != 401 {
		t.Fatalf("broken auth script: %d, want a refusal", code)
	}
	if !a.waitFile(a.errorLog, "to access /broken/x.txt failed, reason: script returned status 500", 5e9) ||
		!a.waitFile(a.errorLog, "auth backend down", 5e9) {
		t.Fatal("the raising auth script was not a logged 500")
	}
	// mod_auth_basic only sends the first challenge; its complaints about
	// having no provider or password file (authn_file is loaded, as Debian
	// has it) are silenced for these locations.
	for _, msg := range []string{"AH01616", "AH01619"} {
		if strings.Contains(a.read(a.errorLog), msg) {
			t.Fatalf("Apache logged %s despite LogLevel auth_basic:crit authn_file:crit", msg)
		}
	}
}

// mod_fcgid gives each of its processes one request at a time and spawns
// more under load: several wsgifcgi instances with the same configuration
// run side by side, each on its own inherited socket with its own workers,
// and all of them go away with Apache.
func TestApacheFcgidSeveralInstances(t *testing.T) {
	a := apacheAuthSetup(t)
	type result struct {
		who  string
		code int
		body string
	}
	var wg sync.WaitGroup
	results := make(chan result, 64)
	for round := 0; round < 2; round++ {
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				user, pass, path := "ann", "pw", "/staff/x.txt"
				switch i % 4 {
				case 1:
					user, pass, path = "joe", "secret", "/staff/x.txt" // not in staff
				case 2:
					user, pass, path = "joe", "secret", "/private/x.txt"
				case 3:
					user, pass, path = "", "", "/blocked/x.txt"
				}
				req, _ := http.NewRequest("GET", a.url+path, nil)
				if user != "" {
					req.SetBasicAuth(user, pass)
				}
				resp, err := client.Do(req)
				if err != nil {
					results <- result{who: user + " " + path, code: -1, body: err.Error()}
					return
				}
				defer resp.Body.Close()
				b := make([]byte, 64)
				n, _ := resp.Body.Read(b)
				results <- result{who: user + " " + path, code: resp.StatusCode, body: string(b[:n])}
			}(i)
		}
		wg.Wait()
	}
	close(results)
	want := map[string]int{"ann /staff/x.txt": 200, "joe /staff/x.txt": 401, "joe /private/x.txt": 200, " /blocked/x.txt": 401}
	for r := range results {
		if r.code != want[r.who] {
			t.Errorf("%s: %d %q, want %d", r.who, r.code, r.body, want[r.who])
		}
	}

	errLog := a.read(a.errorLog)
	instances := strings.Count(errLog, `"message":"serving FastCGI"`)
	sockets := map[string]bool{}
	for _, line := range strings.Split(errLog, "\n") {
		if i := strings.Index(line, `"listen":"unix:`); i >= 0 && strings.Contains(line, "serving FastCGI") {
			sockets[line[i:]] = true
		}
	}
	t.Logf("%d wsgifcgi instances, %d sockets", instances, len(sockets))
	if instances < 2 || len(sockets) != instances {
		t.Fatalf("want several wsgifcgi instances on distinct sockets: %d instances, %d sockets", instances, len(sockets))
	}
	if n := len(a.spawned()); n < instances {
		t.Fatalf("found %d processes of %d instances", n, instances)
	}
	a.stop() // fails the test if any instance or worker outlives Apache
}

// docs/auth.md shows exactly the configuration these tests run.
func TestApacheDocsShowTheTestedConfig(t *testing.T) {
	b, err := os.ReadFile("../docs/auth.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	fill := strings.NewReplacer("{{DIR}}", "/srv/auth", "{{BIN}}", "/usr/local/bin/wsgifcgi",
		"{{WRAPPER}}", "/srv/auth/wsgifcgi-auth").Replace
	for name, block := range map[string]string{
		"Apache":  "```apache" + fill(apacheFcgidAuth) + "```",
		"wrapper": "```sh\n" + fill(apacheWrapper) + "```",
		"TOML":    "```toml\n" + fill(apacheAuthConf) + "```",
		"nginx":   "```nginx" + nginxAuthRequest + "```",
	} {
		if !strings.Contains(doc, block) {
			t.Errorf("docs/auth.md lacks the tested %s block:\n%s", name, block)
		}
	}
}
