package gateway

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFindPythonSkipsWhatTheWorkerCannotRun(t *testing.T) {
	root := t.TempDir()
	os.Chmod(filepath.Dir(root), 0o755) // t.TempDir makes both levels 0700
	os.Chmod(root, 0o755)
	private := filepath.Join(root, "private") // like /root/.pyenv/shims
	public := filepath.Join(root, "public")
	for dir, mode := range map[string]os.FileMode{private: 0o700, public: 0o755} {
		os.Mkdir(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "python3"), []byte("#!/bin/sh\n"), 0o755)
		os.Chmod(dir, mode)
	}
	t.Setenv("PATH", private+string(os.PathListSeparator)+public)
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if owner := uint32(os.Getuid()); owner == nobody.Uid {
		t.Skip("running as nobody")
	}
	got, err := findPython("python3", nobody)
	if err != nil || got != filepath.Join(public, "python3") {
		t.Fatalf("findPython as nobody = %q, %v; want the public one", got, err)
	}
	if _, err := findPython(filepath.Join(private, "python3"), nobody); err == nil {
		t.Fatal("an absolute path nobody cannot reach was accepted")
	}
	if got, err := findPython("python3", nil); err != nil || got != filepath.Join(private, "python3") {
		t.Fatalf("findPython as the bridge = %q, %v; want the first on PATH", got, err)
	}
	os.Chmod(filepath.Join(public, "python3"), 0o744) // not executable by others
	if _, err := findPython("python3", nobody); err == nil {
		t.Fatal("found a python that nobody cannot execute")
	}
}
