package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Permission bits for canAccess.
const (
	permRead = 4
	permExec = 1
)

// canAccess says whether a process with cred could open path for want:
// search permission on every directory above it, want on the file itself.
// A nil cred is the bridge's own identity. It decides from mode bits, as
// the kernel does for a process without capabilities.
func canAccess(path string, cred *syscall.Credential, want uint32) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	if cred == nil || cred.Uid == 0 {
		st, err := os.Stat(real)
		return err == nil && (cred != nil || st.Mode().Perm()&0o111 != 0 || want&permExec == 0)
	}
	dir := "/"
	for _, part := range strings.Split(strings.TrimPrefix(filepath.Dir(real), "/"), "/") {
		if part == "" {
			continue
		}
		dir = filepath.Join(dir, part)
		if !modeAllows(dir, cred, permExec) {
			return false
		}
	}
	return modeAllows(real, cred, want)
}

func modeAllows(path string, cred *syscall.Credential, want uint32) bool {
	var st syscall.Stat_t
	return syscall.Stat(path, &st) == nil && modeBitsAllow(&st, cred, want)
}

func inGroup(gid uint32, cred *syscall.Credential) bool {
	if gid == cred.Gid {
		return true
	}
	for _, g := range cred.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// findPython resolves python-executable for a worker running as cred: a
// name is looked up on PATH, taking the first candidate that user can run
// (as root, PATH may start with a directory only root can enter, such as
// pyenv's shims under /root).
func findPython(name string, cred *syscall.Credential) (string, error) {
	who := "the bridge's user"
	if cred != nil {
		who = fmt.Sprintf("uid %d", cred.Uid)
	}
	if strings.Contains(name, "/") {
		if !canAccess(name, cred, permRead|permExec) {
			return "", fmt.Errorf("python-executable %s: not found or not executable by %s", name, who)
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if canAccess(p, cred, permRead|permExec) {
			return p, nil
		}
	}
	return "", fmt.Errorf("python-executable %q: no executable on PATH that %s can run", name, who)
}
