package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// accessProblem decides as the worker's user, whatever the bridge can do.
func TestAccessProblemAsWorkerUser(t *testing.T) {
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if uint32(os.Getuid()) == nobody.Uid {
		t.Skip("running as nobody")
	}
	root := t.TempDir()
	os.Chmod(filepath.Dir(root), 0o755)
	os.Chmod(root, 0o755)
	private := filepath.Join(root, "private")
	os.Mkdir(private, 0o700)
	os.WriteFile(filepath.Join(private, "app.wsgi"), nil, 0o644)
	secret := filepath.Join(root, "secret.wsgi")
	os.WriteFile(secret, nil, 0o600)
	open := filepath.Join(root, "open.wsgi")
	os.WriteFile(open, nil, 0o644)
	link := filepath.Join(root, "link.wsgi")
	os.Symlink(filepath.Join(private, "app.wsgi"), link)

	for _, c := range []struct {
		path string
		dir  bool
		want string
	}{
		{filepath.Join(private, "app.wsgi"), false, "cannot enter " + private + " (rwx------"},
		{private, true, "cannot enter " + private + " (rwx------"},
		{secret, false, "cannot read " + secret + " (rw-------"},
		{link, false, "cannot enter " + private},
		{open, false, ""},
		{root, true, ""},
		{filepath.Join(root, "missing.wsgi"), false, ""}, // a 404, not an access problem
	} {
		got := accessProblem(c.path, nobody, c.dir)
		if c.want == "" && got != "" || !strings.HasPrefix(got, c.want) {
			t.Errorf("accessProblem(%s, nobody, dir=%v) = %q, want %q...", c.path, c.dir, got, c.want)
		}
	}
	if got := accessProblem(secret, &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}, false); got != "" {
		t.Errorf("the owner: %q", got)
	}
}
