package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// As root, `check` refuses what `serve` would refuse at start: a process
// group without a user (workers never run as root).
func TestCheckRefusesRootWorkers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root needs a worker user")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "a.toml")
	os.WriteFile(conf, []byte("[server]\npython-executable = \"/usr/bin/python3\"\n[daemon.site1]\nprocesses = 1\n"), 0o644)
	out, err := exec.Command(binPath, "check", "-c", conf).CombinedOutput()
	if code := exitCodeOf(err); code != 1 || !strings.Contains(string(out), "process group site1: the bridge runs as root, so a user is required") {
		t.Fatalf("check without a user as root: exit %d\n%s", code, out)
	}
	os.WriteFile(conf, []byte("[server]\npython-executable = \"/usr/bin/python3\"\n[embedded]\nuser = \"nobody\"\n[daemon.site1]\nprocesses = 1\n"), 0o644)
	if out, err := exec.Command(binPath, "check", "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("check with a user: %v\n%s", err, out)
	}
}

func exitCodeOf(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
