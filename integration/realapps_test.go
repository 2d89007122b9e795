package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The real-application suite: programs from Debian's packages, served with
// wsgifcgi's default settings behind nginx and driven by their own clients.
// Django (admin login with CSRF, adding an object, under a sub-path and at
// the root) and Flask (streaming, upload) are in django_test.go and
// flask_test.go; Mercurial is here.

// hgweb is Mercurial's WSGI application. hg clone of a repository with
// large binary files, hg verify, commit and hg push back (allow_push),
// hg verify on the server, and the web pages /log and /archive/tip.tar.gz.
// Mercurial reads sys.stdout.buffer when it is imported: it fails with
// restrict-stdout on (the 2.x default), and works with mod_wsgi 4's.
func TestRealAppsMercurial(t *testing.T) {
	hg, err := exec.LookPath("hg")
	if err != nil {
		t.Fatalf("hg is not installed (make deps installs the mercurial package): %v", err)
	}
	dir := testDir(t)
	run := func(cwd string, args ...string) string {
		t.Helper()
		cmd := exec.Command(hg, args...)
		cmd.Dir = cwd
		// Only this test's settings: no user or system hgrc.
		cmd.Env = append(os.Environ(), "HGRCPATH=", "HGPLAIN=1", "HGUSER=wsgifcgi test <test@example.com>",
			"HGENCODING=utf-8")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hg %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}

	// The server's repository: two large binary files and a text file.
	repo := filepath.Join(dir, "repo")
	run(dir, "init", repo)
	big := map[string][]byte{"data/blob1.bin": randomBytes(t, 6<<20), "data/blob2.bin": randomBytes(t, 3<<20)}
	for name, b := range big {
		os.MkdirAll(filepath.Join(repo, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(repo, name), b, 0o644)
	}
	os.WriteFile(filepath.Join(repo, "README"), []byte("served by wsgifcgi\n"), 0o644)
	run(repo, "add")
	run(repo, "commit", "-m", "initial: large binaries")
	os.WriteFile(filepath.Join(repo, ".hg", "hgrc"), []byte("[web]\nallow_push = *\npush_ssl = false\nallow_archive = gz\n"), 0o644)
	// The workers (nobody, as root) write the pushed changesets.
	filepath.WalkDir(repo, func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			realAppChownToWorker(t, p)
		}
		return err
	})

	script := filepath.Join(dir, "hgweb.wsgi")
	os.WriteFile(script, []byte(fmt.Sprintf(`# Mercurial's contrib/hgweb.wsgi, for one repository.
from mercurial import demandimport
demandimport.enable()
from mercurial.hgweb import hgweb

application = hgweb(%q.encode(), b"test repository")
`, repo)), 0o644)
	// Default settings: nothing but where the script is and who runs it.
	conf := fmt.Sprintf("[server]\npython-executable = %q\nsocket-mode = \"0666\"\n\n[embedded]\n%s\n[[script-alias]]\nurl = \"/hg\"\npath = %q\n",
		python, workerUser(), script)
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, nginxRealApp)
	url := n.url + "/hg"

	clone := filepath.Join(dir, "clone")
	run(dir, "clone", url, clone)
	run(clone, "verify")
	for name, b := range big {
		if got := mustRead(t, filepath.Join(clone, name)); !bytes.Equal(got, b) {
			t.Fatalf("cloned %s differs (%d bytes, want %d)", name, len(got), len(b))
		}
	}

	pushed := randomBytes(t, 4<<20)
	os.WriteFile(filepath.Join(clone, "data", "pushed.bin"), pushed, 0o644)
	run(clone, "add", "data/pushed.bin")
	run(clone, "commit", "-m", "pushed through wsgifcgi")
	if out := run(clone, "push", url); !strings.Contains(out, "added 1 changesets") {
		t.Fatalf("hg push: %s", out)
	}
	run(repo, "verify")
	if out := run(repo, "log", "-r", "tip", "-T", "{desc}"); out != "pushed through wsgifcgi" {
		t.Fatalf("server tip after push: %q", out)
	}

	code, body := get(t, url+"/log")
	if code != 200 || !strings.Contains(body, "pushed through wsgifcgi") || !strings.Contains(body, "initial: large binaries") {
		t.Fatalf("GET /hg/log = %d\n%.2000s", code, body)
	}
	resp, err := client.Get(url + "/archive/tip.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /hg/archive/tip.tar.gz = %d", resp.StatusCode)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][32]byte{"data/pushed.bin": sha256.Sum256(pushed)}
	for name, b := range big {
		want[name] = sha256.Sum256(b)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("archive: %v", err)
		}
		name := h.Name[strings.IndexByte(h.Name, '/')+1:] // "repo-<node>/data/..."
		if sum, ok := want[name]; ok {
			h := sha256.New()
			io.Copy(h, tr)
			if !bytes.Equal(h.Sum(nil), sum[:]) {
				t.Errorf("archive: %s differs", name)
			}
			delete(want, name)
		}
	}
	if len(want) != 0 {
		t.Errorf("archive lacks %v", want)
	}
	if lines := s.log.lines("RestrictedStream"); len(lines) != 0 {
		t.Errorf("restricted streams in the log: %v", lines)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Django's admin with a CSRF-protected login, then adding an object, both
// at the root and under a sub-path: the same project (one database) mounted
// at / and at /site.
func TestRealAppsDjangoAdminAddObject(t *testing.T) {
	n, _ := djangoSetup(t, `
[[script-alias]]
url = "/"
path = %q
process-group = "django"
application-group = "%%{GLOBAL}"
`)
	for _, c := range []struct{ mount, group string }{{"", "editors-at-root"}, {"/site", "editors-under-site"}} {
		t.Run("mount="+c.mount, func(t *testing.T) {
			cl := realAppClient(t)
			login := n.url + c.mount + "/admin/login/?next=" + c.mount + "/admin/"
			resp, body := realAppGet(t, cl, login)
			m := csrfField.FindStringSubmatch(body)
			if resp.StatusCode != 200 || m == nil {
				t.Fatalf("GET %s = %d, csrf token found %v", login, resp.StatusCode, m != nil)
			}
			form := url.Values{"username": {"admin"}, "password": {"s3cret-Pa55"}, "next": {c.mount + "/admin/"},
				"csrfmiddlewaretoken": {m[1]}}
			resp, body = realAppDo(t, cl, realAppForm(t, login, form))
			if resp.StatusCode != 302 || resp.Header.Get("Location") != c.mount+"/admin/" {
				t.Fatalf("login = %d Location %q\n%.2000s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			// Add an object: an auth Group, through the admin's own form.
			add := n.url + c.mount + "/admin/auth/group/add/"
			resp, body = realAppGet(t, cl, add)
			m = csrfField.FindStringSubmatch(body)
			if resp.StatusCode != 200 || m == nil || !strings.Contains(body, `action=""`) && !strings.Contains(body, `<form `) {
				t.Fatalf("GET %s = %d\n%.2000s", add, resp.StatusCode, body)
			}
			form = url.Values{"csrfmiddlewaretoken": {m[1]}, "name": {c.group}, "_save": {"Save"}}
			resp, body = realAppDo(t, cl, realAppForm(t, add, form))
			if resp.StatusCode != 302 || resp.Header.Get("Location") != c.mount+"/admin/auth/group/" {
				t.Fatalf("POST %s = %d Location %q\n%.2000s", add, resp.StatusCode, resp.Header.Get("Location"), body)
			}
			resp, body = realAppGet(t, cl, n.url+resp.Header.Get("Location"))
			if resp.StatusCode != 200 || !strings.Contains(body, c.group) || !strings.Contains(body, `href="`+c.mount+`/admin/auth/group/`) {
				t.Fatalf("group list = %d, %q listed %v", resp.StatusCode, c.group, strings.Contains(body, c.group))
			}
		})
	}
}
