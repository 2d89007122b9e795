package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nginxRealApp passes everything to wsgifcgi with the Host header as the
// client sent it (so absolute URLs keep the port), and does not buffer
// responses under /flask/stream.
const nginxRealApp = `
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param HTTP_HOST $http_host;
            fastcgi_param REMOTE_USER "";
            fastcgi_pass wsgifcgi;
            fastcgi_keep_conn on;
        }
        location /flask/stream {
            include /etc/nginx/fastcgi_params;
            fastcgi_param HTTP_HOST $http_host;
            fastcgi_param REMOTE_USER "";
            fastcgi_pass wsgifcgi;
            fastcgi_keep_conn on;
            fastcgi_buffering off;
        }
`

// realAppCopy copies the tree src into dst (without __pycache__).
func realAppCopy(t *testing.T, src, dst string) string {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// realAppChownToWorker gives the paths to the worker user of workerUser()
// when the tests run as root (the workers then run as that user).
func realAppChownToWorker(t *testing.T, paths ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

// realAppClient is a client with a cookie jar that does not follow redirects.
func realAppClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// realAppDo runs a request and returns the response with its whole body.
func realAppDo(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

func realAppGet(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return realAppDo(t, c, req)
}

// realAppMultipart is a multipart/form-data body with the fields and one
// file part named "file".
func realAppMultipart(t *testing.T, fields map[string]string, filename string, data []byte) (string, *bytes.Buffer) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	fw, err := w.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), &body
}

var csrfField = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// djangoSetup copies the Django project of testdata/django into a temp dir,
// creates its SQLite database (migrate) and a superuser, and serves it at
// /site from [daemon.django] behind nginx. extra is appended to the
// configuration; %[1]s in it is the project's wsgi.py.
func djangoSetup(t *testing.T, extra string) (*nginx, string) {
	t.Helper()
	dir := testDir(t)
	proj := realAppCopy(t, "testdata/django", filepath.Join(dir, "django"))
	// settings.py keeps the database in $MYSITE_DATA_DIR; manage.py and
	// the workers (which inherit wsgifcgi's environment) see the same.
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MYSITE_DATA_DIR", data)
	manage := func(env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(python, append([]string{"manage.py"}, args...)...)
		cmd.Dir = proj
		cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
		cmd.Env = append(cmd.Env, env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("manage.py %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	manage(nil, "migrate", "--noinput")
	manage([]string{"DJANGO_SUPERUSER_PASSWORD=s3cret-Pa55"},
		"createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
	// The workers write the database, its journal beside it, and the
	// temporary files of large uploads.
	realAppChownToWorker(t, data, filepath.Join(data, "db.sqlite3"))

	conf := fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"

[embedded]
%s
[daemon.django]
processes = 2
threads = 4
home = %q
python-path = [%q]

# Django is loaded when the workers start, as with WSGIImportScript.
[[import-script]]
path = %[5]q
process-group = "django"
application-group = "%%{GLOBAL}"

[[script-alias]]
url = "/site"
path = %[5]q
process-group = "django"
application-group = "%%{GLOBAL}"
`, python, workerUser(), proj, proj, filepath.Join(proj, "mysite", "wsgi.py"))
	if extra != "" {
		conf += fmt.Sprintf(extra, filepath.Join(proj, "mysite", "wsgi.py"))
	}
	s := startServer(t, dir, conf)
	return startNginx(t, dir, s.sock, nginxRealApp), dir
}

func TestDjangoProject(t *testing.T) {
	n, _ := djangoSetup(t, "")

	t.Run("AdminLogin", func(t *testing.T) {
		c := realAppClient(t)
		// Not logged in: the admin redirects to its login page, under /site.
		resp, body := realAppGet(t, c, n.url+"/site/admin/")
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "/site/admin/login/?next=/site/admin/" {
			t.Fatalf("GET /site/admin/ = %d Location %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		loginURL := n.url + resp.Header.Get("Location")
		resp, body = realAppGet(t, c, loginURL)
		m := csrfField.FindStringSubmatch(body)
		if resp.StatusCode != 200 || m == nil {
			t.Fatalf("GET login form = %d, csrf token found %v\n%s", resp.StatusCode, m != nil, body)
		}
		if !strings.Contains(body, `action="/site/admin/login/?next=/site/admin/"`) {
			t.Errorf("the login form does not post to /site/admin/login/:\n%s", body)
		}
		var csrfCookie bool
		for _, ck := range c.Jar.Cookies(resp.Request.URL) {
			csrfCookie = csrfCookie || ck.Name == "csrftoken"
		}
		if !csrfCookie {
			t.Fatalf("no csrftoken cookie after the login form: %v", resp.Header["Set-Cookie"])
		}

		// Without the token (a client with no cookie either): 403.
		form := url.Values{"username": {"admin"}, "password": {"s3cret-Pa55"}, "next": {"/site/admin/"}}
		resp, _ = realAppDo(t, realAppClient(t), realAppForm(t, loginURL, form))
		if resp.StatusCode != 403 {
			t.Errorf("login POST without CSRF token = %d, want 403", resp.StatusCode)
		}
		// A wrong password: the form again, no session.
		form.Set("csrfmiddlewaretoken", m[1])
		form.Set("password", "wrong")
		resp, body = realAppDo(t, c, realAppForm(t, loginURL, form))
		if resp.StatusCode != 200 || !strings.Contains(body, "Please enter the correct username and password") {
			t.Errorf("login with a wrong password = %d\n%s", resp.StatusCode, body)
		}
		// The right one: redirected to next, with the session cookie.
		form.Set("password", "s3cret-Pa55")
		resp, body = realAppDo(t, c, realAppForm(t, loginURL, form))
		if resp.StatusCode != 302 || resp.Header.Get("Location") != "/site/admin/" {
			t.Fatalf("login POST = %d Location %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		var session *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "sessionid" {
				session = ck
			}
		}
		if session == nil || session.Value == "" {
			t.Fatalf("no sessionid cookie after login: %v", resp.Header["Set-Cookie"])
		}
		// Follow the redirect with the session cookie: the admin index of
		// the superuser, with every link under /site.
		resp, body = realAppGet(t, c, n.url+resp.Header.Get("Location"))
		if resp.StatusCode != 200 {
			t.Fatalf("GET /site/admin/ logged in = %d\n%s", resp.StatusCode, body)
		}
		for _, want := range []string{
			"Site administration", "<strong>admin</strong>",
			`href="/site/admin/logout/"`, `href="/site/admin/auth/user/"`,
			`href="/site/static/admin/css/base.css"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("admin index lacks %q", want)
			}
		}
		// The session is in the database: another request (any worker
		// process) still sees it; the user list shows the superuser.
		resp, body = realAppGet(t, c, n.url+"/site/admin/auth/user/")
		if resp.StatusCode != 200 || !strings.Contains(body, "admin@example.com") {
			t.Errorf("GET /site/admin/auth/user/ = %d, superuser listed %v", resp.StatusCode, strings.Contains(body, "admin@example.com"))
		}
	})

	t.Run("ReverseUnderPrefix", func(t *testing.T) {
		c := realAppClient(t)
		resp, body := realAppGet(t, c, n.url+"/site/urls/")
		var got map[string]any
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil {
			t.Fatalf("GET /site/urls/ = %d %q", resp.StatusCode, body)
		}
		want := map[string]any{
			"script_name":   "/site",
			"path_info":     "/urls/",
			"path":          "/site/urls/",
			"script_prefix": "/site/",
			"admin_index":   "/site/admin/",
			"admin_login":   "/site/admin/login/",
			"upload":        "/site/upload/",
			"item":          "/site/items/42/",
			"absolute":      n.url + "/site/urls/",
			"static":        "/site/static/admin/css/base.css",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %#v, want %#v", k, got[k], v)
			}
		}
		// APPEND_SLASH's redirect keeps the mount.
		resp, _ = realAppGet(t, c, n.url+"/site/items/7?x=1")
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "/site/items/7/?x=1" {
			t.Errorf("GET /site/items/7?x=1 = %d Location %q, want 301 /site/items/7/?x=1", resp.StatusCode, resp.Header.Get("Location"))
		}
		// Outside the mount: not Django's.
		if resp, _ := realAppGet(t, c, n.url+"/sitex/urls/"); resp.StatusCode != 404 {
			t.Errorf("GET /sitex/urls/ = %d, want 404", resp.StatusCode)
		}
	})

	t.Run("FileUpload", func(t *testing.T) {
		c := realAppClient(t)
		resp, body := realAppGet(t, c, n.url+"/site/upload/")
		m := csrfField.FindStringSubmatch(body)
		if resp.StatusCode != 200 || m == nil || !strings.Contains(body, `action="/site/upload/"`) {
			t.Fatalf("GET /site/upload/ = %d\n%s", resp.StatusCode, body)
		}
		data := make([]byte, 5<<20+12345)
		rand.Read(data)
		sum := sha256.Sum256(data)
		ctype, mp := realAppMultipart(t, map[string]string{"csrfmiddlewaretoken": m[1], "note": "five MiB"}, "big.bin", data)
		raw := mp.Bytes()
		req, _ := http.NewRequest("POST", n.url+"/site/upload/", bytes.NewReader(raw))
		req.Header.Set("Content-Type", ctype)
		resp, body = realAppDo(t, c, req)
		var got struct {
			Name, Sha256, Note string
			Size               int
			OnDisk             bool `json:"on_disk"`
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil {
			t.Fatalf("POST /site/upload/ = %d %q", resp.StatusCode, body)
		}
		if got.Sha256 != hex.EncodeToString(sum[:]) || got.Size != len(data) || got.Name != "big.bin" || got.Note != "five MiB" || !got.OnDisk {
			t.Fatalf("upload seen by Django: %+v; want sha256 %x size %d, spooled to disk", got, sum, len(data))
		}
		// The same upload without the CSRF token: rejected.
		ctype, mp = realAppMultipart(t, nil, "big.bin", data[:1<<20])
		req, _ = http.NewRequest("POST", n.url+"/site/upload/", mp)
		req.Header.Set("Content-Type", ctype)
		if resp, _ := realAppDo(t, c, req); resp.StatusCode != 403 {
			t.Errorf("upload without CSRF token = %d, want 403", resp.StatusCode)
		}
	})
}

func realAppForm(t *testing.T, u string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
