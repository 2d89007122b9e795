package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func envPid(t *testing.T, url string) float64 {
	t.Helper()
	code, body := get(t, url)
	var env map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &env) != nil {
		t.Fatalf("GET %s = %d %q", url, code, body)
	}
	return env["pid"].(float64)
}

func TestSIGHUPReloadsAndKeepsOldOnError(t *testing.T) {
	dir := testDir(t)
	apps := appsDir(t, dir)
	base := spineConf(apps, 1, 2)
	s := startServer(t, dir, base)
	n := startNginx(t, dir, s.sock, nginxFastCGI)
	if code, _ := get(t, n.url+"/hello"); code != 200 {
		t.Fatalf("before reload: %d", code)
	}
	// A new alias in front of "/": /v2 mounts the same app.
	conf := fmt.Sprintf("[[script-alias]]\nurl = \"/v2\"\npath = %q\n", filepath.Join(apps, "app.wsgi")) + base
	os.WriteFile(filepath.Join(dir, "conf.d", "00-test.toml"), []byte(conf), 0o644)
	s.cmd.Process.Signal(syscall.SIGHUP)
	if !s.waitLog("configuration reloaded", 10*time.Second) {
		t.Fatal("no reload logged")
	}
	code, body := get(t, n.url+"/v2/env")
	var env map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &env) != nil || env["SCRIPT_NAME"] != "/v2" {
		t.Fatalf("after reload GET /v2/env = %d %q", code, body)
	}
	// A broken file is refused and the running configuration keeps serving.
	os.WriteFile(filepath.Join(dir, "conf.d", "00-test.toml"), []byte(conf+"\nbogus-key = 1\n"), 0o644)
	s.cmd.Process.Signal(syscall.SIGHUP)
	if !s.waitLog("configuration rejected", 10*time.Second) {
		t.Fatal("broken configuration not reported")
	}
	if code, _ := get(t, n.url+"/v2/hello"); code != 200 {
		t.Fatalf("after a rejected reload GET /v2/hello = %d", code)
	}
}

func TestSIGUSR1RestartsWorkers(t *testing.T) {
	s, n, _ := spine(t, 1, 2)
	before := envPid(t, n.url+"/env")
	s.cmd.Process.Signal(syscall.SIGUSR1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pid := envPid(t, n.url+"/env"); pid != before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still served by pid %v after SIGUSR1", before)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
