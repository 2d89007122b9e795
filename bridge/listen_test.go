package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestListenUnixMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fcgi.sock")
	l, err := Listen("unix:"+path, ListenConfig{SocketMode: 0o660})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("mode %v", fi.Mode())
	}
	if _, err := Listen("unix:"+path, ListenConfig{}); err == nil || !strings.Contains(err.Error(), "listening") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}
}

func TestListenUnixStaleAndNonSocket(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	// A socket file nobody listens on, as a crashed process leaves it.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Lstat(stale); err != nil {
		t.Fatal("stale socket not left behind")
	}
	l, err := Listen("unix:"+stale, ListenConfig{})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()

	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, []byte("keep me"), 0o644)
	if _, err := Listen("unix:"+regular, ListenConfig{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("non-socket: %v", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep me" {
		t.Error("non-socket file clobbered")
	}
}

func TestListenBadSpecs(t *testing.T) {
	for _, spec := range []string{"", "unix:", "udp:1.2.3.4:5", "fd:x", "fd:-1", "tcp"} {
		if _, err := Listen(spec, ListenConfig{}); err == nil {
			t.Errorf("Listen(%q) succeeded", spec)
		}
	}
	if _, err := Listen("tcp:127.0.0.1:0", ListenConfig{WebServerAddrs: []string{"nonsense"}}); err == nil {
		t.Error("bad web server address accepted")
	}
}

func TestListenTCPWebServerAddrs(t *testing.T) {
	noLeaks(t)
	l, err := Listen("tcp:127.0.0.1:0", ListenConfig{WebServerAddrs: []string{"127.0.0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	s, logs := testServer(t, echoHandler())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(requestBytes(1, false, nil, nil))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c) // EOF or a reset: either way closed at once
	var ne net.Error
	if len(b) != 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("refused peer got %q, %v", b, err)
	}
	if !eventually(func() bool { return strings.Contains(logs.String(), "not in web-server-addrs") }) {
		t.Errorf("refusal not logged: %s", logs)
	}

	// 127.0.0.1 admitted by a prefix.
	l2, err := Listen("tcp:127.0.0.1:0", ListenConfig{WebServerAddrs: []string{"127.0.0.2", "127.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l2)
	c2, err := net.Dial("tcp", l2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Write(requestBytes(1, false, nil, []byte("ok")))
	if r := readResponse(t, c2, 1); !strings.HasSuffix(string(r.stdout), "ok") {
		t.Errorf("admitted peer got %q", r.stdout)
	}
	s.Close()
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

func TestListenFD(t *testing.T) {
	noLeaks(t)
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	f, err := tl.(*net.TCPListener).File() // a duplicate descriptor, as if inherited
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := Listen(fmt.Sprintf("fd:%d", f.Fd()), ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := testServer(t, echoHandler())
	go s.Serve(l)
	c, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Either listener may take it; serve the original too.
	s2, _ := testServer(t, echoHandler())
	go s2.Serve(tl)
	c.Write(requestBytes(1, false, nil, []byte("fd")))
	if r := readResponse(t, c, 1); !strings.HasSuffix(string(r.stdout), "fd") {
		t.Errorf("got %q", r.stdout)
	}
	s.Close()
	s2.Close()

	reg, _ := os.Open(os.Args[0])
	defer reg.Close()
	if _, err := Listen(fmt.Sprintf("fd:%d", reg.Fd()), ListenConfig{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	a, b := socketPair(t)
	defer a.Close()
	defer b.Close()
	af, _ := a.File()
	defer af.Close()
	if _, err := Listen(fmt.Sprintf("fd:%d", af.Fd()), ListenConfig{}); err == nil || !strings.Contains(err.Error(), "not a listening") {
		t.Errorf("connected socket: %v", err)
	}
	if _, err := Listen("fd:987", ListenConfig{}); err == nil || !strings.Contains(err.Error(), "not open") {
		t.Errorf("closed fd: %v", err)
	}
}

// TestInheritedListener runs this test binary as a child whose fd 0 is a
// listening socket, as mod_fcgid starts a FastCGI application.
func TestInheritedListener(t *testing.T) {
	if os.Getenv("BRIDGE_TEST_CHILD") == "1" {
		inheritedChild()
		return
	}
	if _, ok := InheritedListener(); ok {
		t.Fatal("fd 0 of the test is not a listening socket")
	}
	path := filepath.Join(t.TempDir(), "inh.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestInheritedListener$")
	cmd.Env = append(os.Environ(), "BRIDGE_TEST_CHILD=1")
	cmd.Stdin = f
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(requestBytes(1, false, []Param{{"FROM", "parent"}}, nil))
	if r := readResponse(t, c, 1); !strings.HasSuffix(string(r.stdout), "FROM=parent\n") {
		t.Errorf("child answered %q", r.stdout)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("child: %v\n%s", err, out)
	}
}

// inheritedChild serves one connection on the inherited fd 0 and exits.
func inheritedChild() {
	l, ok := InheritedListener()
	if !ok {
		fmt.Println("no inherited listener")
		os.Exit(3)
	}
	c, err := l.Accept()
	if err != nil {
		fmt.Println(err)
		os.Exit(4)
	}
	s := &Server{Handler: echoHandler()}
	s.init()
	s.newConn(c).serve()
	l.Close()
}

func TestSystemdListenersNotOurs(t *testing.T) {
	t.Setenv("LISTEN_PID", "1")
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("LISTEN_FDNAMES", "x")
	if lns, err := SystemdListeners(ListenConfig{}); lns != nil || err != nil {
		t.Fatalf("for another pid: %v, %v", lns, err)
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			t.Errorf("%s still set", k)
		}
	}
	t.Setenv("LISTEN_PID", fmt.Sprint(os.Getpid()))
	t.Setenv("LISTEN_FDS", "two")
	if _, err := SystemdListeners(ListenConfig{}); err == nil || !strings.Contains(err.Error(), "LISTEN_FDS") {
		t.Errorf("bad LISTEN_FDS: %v", err)
	}
	if lns, err := SystemdListeners(ListenConfig{}); lns != nil || err != nil {
		t.Fatalf("unset: %v, %v", lns, err)
	}
}

// TestSystemdListeners runs this test binary as systemd starts a
// socket-activated service: the socket on fd 3, LISTEN_FDS=1, and
// LISTEN_PID set to the child's own pid (by a shell that execs it).
func TestSystemdListeners(t *testing.T) {
	if os.Getenv("BRIDGE_TEST_CHILD") == "systemd" {
		systemdChild()
		return
	}
	path := filepath.Join(t.TempDir(), "sd.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^TestSystemdListeners$'`, os.Args[0])
	cmd.Env = append(os.Environ(), "BRIDGE_TEST_CHILD=systemd", "LISTEN_FDS=1", "LISTEN_FDNAMES=fcgi")
	cmd.ExtraFiles = []*os.File{f} // fd 3
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(requestBytes(1, false, []Param{{"FROM", "systemd"}}, nil))
	if r := readResponse(t, c, 1); !strings.HasSuffix(string(r.stdout), "FROM=systemd\n") {
		t.Errorf("child answered %q", r.stdout)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("child: %v\n%s", err, out)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("closing the listener removed systemd's socket file: %v", err)
	}
}

// systemdChild serves one connection on the socket systemd passed.
func systemdChild() {
	lns, err := SystemdListeners(ListenConfig{})
	if err != nil || len(lns) != 1 {
		fmt.Println("SystemdListeners:", lns, err)
		os.Exit(3)
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			fmt.Println(k, "is still set")
			os.Exit(5)
		}
	}
	if fl, err := unix.FcntlInt(3, unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		fmt.Println("fd 3 is inherited by children:", fl, err)
		os.Exit(6)
	}
	c, err := lns[0].Accept()
	if err != nil {
		fmt.Println(err)
		os.Exit(4)
	}
	s := &Server{Handler: echoHandler()}
	s.init()
	s.newConn(c).serve()
	lns[0].Close()
}
