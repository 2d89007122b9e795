package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// authSetup serves testdata/auth behind nginx with the access control
// contexts of the tests.
func authSetup(t *testing.T, locations string) (*server, *nginx) {
	t.Helper()
	dir := testDir(t)
	for _, f := range []string{"auth.wsgi", "broken.wsgi", "app.wsgi"} {
		b, err := os.ReadFile(filepath.Join("testdata/auth", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	app, auth := filepath.Join(dir, "app.wsgi"), filepath.Join(dir, "auth.wsgi")
	conf := fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"

[embedded]
%s
[[script-alias]]
url = "/private"
path = %[3]q
auth-type = "Basic"
auth-name = "Members"
require = ["valid-user"]
auth-user-script = %[4]q

[[script-alias]]
url = "/staff"
path = %[3]q
auth-type = "Basic"
auth-name = "Staff"
require = ["group staff"]
auth-user-script = %[4]q
auth-group-script = %[4]q

[[script-alias]]
url = "/digest"
path = %[3]q
auth-type = "Digest"
auth-name = "Members"
require = ["user joe"]
auth-user-script = %[4]q

[[script-alias]]
url = "/broken"
path = %[3]q
auth-type = "Basic"
auth-name = "Broken"
require = ["valid-user"]
auth-user-script = %[5]q

[[script-alias]]
url = "/"
path = %[3]q
access-script = %[4]q
`, python, workerUser(), app, auth, filepath.Join(dir, "broken.wsgi"))
	s := startServer(t, dir, conf)
	return s, startNginx(t, dir, s.sock, locations)
}

func request(t *testing.T, url, user, pass string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestBasicAuthGroupsAndAccess(t *testing.T) {
	_, n := authSetup(t, nginxFastCGI)
	code, hdr, _ := request(t, n.url+"/private/x", "", "")
	if code != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="Members"` {
		t.Fatalf("no credentials: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	if code, _, _ := request(t, n.url+"/private/x", "joe", "wrong"); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if code, _, _ := request(t, n.url+"/private/x", "nobody-known", "x"); code != 401 {
		t.Fatalf("unknown user: %d", code)
	}
	code, _, body := request(t, n.url+"/private/x", "joe", "secret")
	if code != 200 || body != "user=joe type=Basic auth=None\n" {
		t.Fatalf("right password: %d %q (HTTP_AUTHORIZATION must stay hidden without pass-authorization)", code, body)
	}
	if code, _, _ := request(t, n.url+"/staff/x", "joe", "secret"); code != 401 {
		t.Fatalf("require group staff, joe is not in it: %d", code)
	}
	if code, _, body := request(t, n.url+"/staff/x", "ann", "pw"); code != 200 || !strings.HasPrefix(body, "user=ann ") {
		t.Fatalf("require group staff, ann is: %d %q", code, body)
	}
	if code, _, _ := request(t, n.url+"/blocked", "", ""); code != 403 {
		t.Fatalf("allow_access False: %d", code)
	}
	if code, _, _ := request(t, n.url+"/open", "", ""); code != 200 {
		t.Fatalf("allow_access None: %d", code)
	}
	// A front end's REMOTE_USER (Debian's fastcgi_params sends $remote_user,
	// which nobody verified) never reaches the app.
	code, _, body = request(t, n.url+"/open", "mallory", "x")
	if code != 200 || !strings.HasPrefix(body, "user=None ") {
		t.Fatalf("unverified REMOTE_USER leaked: %d %q", code, body)
	}
}

func TestAuthScriptErrorIs500(t *testing.T) {
	s, n := authSetup(t, nginxFastCGI)
	if code, _, _ := request(t, n.url+"/broken/x", "joe", "secret"); code != 500 {
		t.Fatalf("raising auth script: %d, want 500", code)
	}
	if !s.waitLog("auth backend down", 5e9) {
		t.Fatal("the auth script's traceback was not logged")
	}
}

func TestDigestAuthWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	_, n := authSetup(t, nginxFastCGI)
	run := func(user string) (string, string) {
		out, err := exec.Command(curl, "-s", "--digest", "-u", user, "-w", "\n%{http_code}", n.url+"/digest/x?a=1").Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		i := strings.LastIndex(string(out), "\n") // -w puts the status last
		return strings.TrimSpace(string(out[i+1:])), strings.TrimSpace(string(out[:max(i, 0)]))
	}
	if code, body := run("joe:secret"); code != "200" || body != "user=joe type=Digest auth=None" {
		t.Fatalf("digest, right password: %s %q", code, body)
	}
	if code, _ := run("joe:wrong"); code != "401" {
		t.Fatalf("digest, wrong password: %s", code)
	}
	if code, _ := run("ann:pw"); code != "401" {
		t.Fatalf("digest, require user joe, as ann: %s", code)
	}
}

// The nginx recipe of docs/auth.md: auth_request to a location that asks
// wsgifcgi for the access decision only.
const nginxAuthRequest = `
        location / {
            auth_request /_wsgifcgi_auth;
            auth_request_set $wsgi_user $upstream_http_variable_remote_user;
            auth_request_set $wsgi_auth_type $upstream_http_variable_auth_type;
            include /etc/nginx/fastcgi_params;
            fastcgi_param REMOTE_USER $wsgi_user;
            fastcgi_param AUTH_TYPE $wsgi_auth_type;
            fastcgi_pass wsgifcgi;
            fastcgi_keep_conn on;
        }
        location = /_wsgifcgi_auth {
            internal;
            include /etc/nginx/fastcgi_params;
            fastcgi_param WSGIFCGI_AUTHORIZE 1;
            fastcgi_param CONTENT_LENGTH "";
            fastcgi_pass_request_body off;
            fastcgi_pass wsgifcgi;
            fastcgi_keep_conn on;
        }
`

func TestNginxAuthRequestRecipe(t *testing.T) {
	_, n := authSetup(t, nginxAuthRequest)
	code, hdr, _ := request(t, n.url+"/private/x", "", "")
	if code != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="Members"` {
		t.Fatalf("auth_request, no credentials: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	if code, _, _ := request(t, n.url+"/private/x", "joe", "wrong"); code != 401 {
		t.Fatalf("auth_request, wrong password: %d", code)
	}
	if code, _, _ := request(t, n.url+"/blocked", "", ""); code != 403 {
		t.Fatalf("auth_request, access denied: %d", code)
	}
	// The app runs after the check. It sees the user only with
	// trust-remote-user (this config keeps it off): the bridge checks again
	// on the responder request, so REMOTE_USER is its own.
	code, _, body := request(t, n.url+"/private/x", "joe", "secret")
	if code != 200 || !strings.HasPrefix(body, "user=joe type=Basic") {
		t.Fatalf("auth_request, right password: %d %q", code, body)
	}
}

// auth_request guarding static files nginx serves itself: wsgifcgi routes
// no script for them, only a [[location]] with access control.
func TestNginxAuthRequestStaticFiles(t *testing.T) {
	dir := testDir(t)
	b, _ := os.ReadFile("testdata/auth/auth.wsgi")
	auth := filepath.Join(dir, "auth.wsgi")
	os.WriteFile(auth, b, 0o644)
	static := filepath.Join(dir, "static", "files")
	os.MkdirAll(static, 0o755)
	os.WriteFile(filepath.Join(static, "a.txt"), []byte("static file\n"), 0o644)
	conf := fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"

[embedded]
%s
[[location]]
url = "/files"
auth-type = "Basic"
auth-name = "Files"
require = ["valid-user"]
auth-user-script = %q
`, python, workerUser(), auth)
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, fmt.Sprintf(`
        location /files/ {
            auth_request /_wsgifcgi_auth;
            root %s;
        }
        location = /_wsgifcgi_auth {
            internal;
            include /etc/nginx/fastcgi_params;
            fastcgi_param WSGIFCGI_AUTHORIZE 1;
            fastcgi_param CONTENT_LENGTH "";
            fastcgi_pass_request_body off;
            fastcgi_pass wsgifcgi;
        }
`, filepath.Join(dir, "static")))
	code, hdr, _ := request(t, n.url+"/files/a.txt", "", "")
	if code != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="Files"` {
		t.Fatalf("static file, no credentials: %d %q", code, hdr.Get("WWW-Authenticate"))
	}
	if code, _, _ := request(t, n.url+"/files/a.txt", "joe", "wrong"); code != 401 {
		t.Fatalf("static file, wrong password: %d", code)
	}
	if code, _, body := request(t, n.url+"/files/a.txt", "joe", "secret"); code != 200 || body != "static file\n" {
		t.Fatalf("static file, right password: %d %q", code, body)
	}
}
