package main

import (
	"fmt"
	"os"
	"os/exec"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// capacity is the same for every Python contender: processes × threads.
type capacity struct {
	procs, threads int
	conns          int // wrk -c for this capacity
}

func (c capacity) String() string { return fmt.Sprintf("%d×%d", c.procs, c.threads) }

// contender is one server under test. Those behind nginx get a server block
// of the shared nginx; the others listen on their own port.
type contender struct {
	key, name string
	python    bool            // runs the WSGI app (gets the capacity)
	skip      map[string]bool // scenarios it does not run
	only11    bool            // runs at 1×1 only
	port      int             // the HTTP port wrk hits
	nginx     string          // server block body for nginx ("" = not behind nginx)
	start     func(e *env, c capacity, ct *contender) error
	procs     []*proc
	err       error
}

func (ct *contender) url() string { return fmt.Sprintf("http://127.0.0.1:%d", ct.port) }

func skips(keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// env is the run's temp dir and tools.
type env struct {
	dir      string // temp dir, readable by the workers' user
	repo     string
	bridge   string // bin/wsgifcgi
	self     string // this binary (for the Go FastCGI ceiling)
	app      string // dir/app/hello.wsgi or real.wsgi: the app of the running phase
	floor    string // the design floor's binary ("" when not built: floorErr)
	floorW   string // its worker.py
	floorErr error
	user     string
	group    string
	nginx    *proc
}

const fastcgiLocation = `
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param HTTP_HOST $http_host;
            fastcgi_param REMOTE_USER "";
            fastcgi_param SCRIPT_NAME "";
            fastcgi_param PATH_INFO $uri;
            fastcgi_pass %[1]s;
            fastcgi_keep_conn on;
        }
        location /stream/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param HTTP_HOST $http_host;
            fastcgi_param REMOTE_USER "";
            fastcgi_param SCRIPT_NAME "";
            fastcgi_param PATH_INFO $uri;
            fastcgi_pass %[1]s;
            fastcgi_keep_conn on;
            fastcgi_request_buffering off;
            fastcgi_buffering off;
        }
`

func fastcgiBlock(upstream string) string { return fmt.Sprintf(fastcgiLocation, upstream) }

func newContenders(e *env) []*contender {
	sock := func(n string) string { return filepath.Join(e.dir, n+".sock") }
	return []*contender{
		{
			key: "wsgifcgi", name: "wsgifcgi (nginx FastCGI)", python: true,
			nginx: fastcgiBlock("wsgifcgi"),
			start: func(e *env, c capacity, ct *contender) error {
				p, err := startBridge(e, "wsgifcgi", sock("wsgifcgi"), c, false)
				ct.procs = append(ct.procs, p)
				return err
			},
		},
		{
			// The access log's cost: hello at 1×1 only, for its CPU per request.
			key: "wsgifcgi-log", name: "wsgifcgi, access-log = true", python: true,
			nginx: fastcgiBlock("wsgifcgi-log"), only11: true, skip: skips("1m", "upload", "flask", "django"),
			start: func(e *env, c capacity, ct *contender) error {
				p, err := startBridge(e, "wsgifcgi-log", sock("wsgifcgi-log"), c, true)
				ct.procs = append(ct.procs, p)
				return err
			},
		},
		{
			key: "uwsgi", name: "uWSGI (nginx FastCGI)", python: true,
			nginx: fastcgiBlock("uwsgi"),
			start: func(e *env, c capacity, ct *contender) error {
				// uWSGI binds its FastCGI socket after dropping to --uid:
				// the socket lives in a directory that user may write.
				run := filepath.Join(e.dir, "uwsgi-run")
				os.MkdirAll(run, 0o755)
				if err := chownTo(run, e.user, e.group); err != nil {
					return err
				}
				s := filepath.Join(run, "uwsgi.sock")
				os.Remove(s)
				args := []string{"uwsgi", "--plugins", "python3", "--fastcgi-socket", s,
					"--chmod-socket=666", "--wsgi-file", e.app, "--master",
					"--processes", strconv.Itoa(c.procs), "--uid", e.user, "--gid", e.group,
					"--disable-logging", "--die-on-term", "--need-app", "--listen", "1024"}
				if c.threads > 1 {
					args = append(args, "--threads", strconv.Itoa(c.threads))
				}
				p, err := start(e.dir, "uwsgi", nil, args...)
				if err != nil {
					return err
				}
				ct.procs = append(ct.procs, p)
				return waitFor(p, 20*time.Second, "the uWSGI socket", dialOK("unix", s))
			},
		},
		{
			key: "modwsgi", name: "Apache mod_wsgi (daemon)", python: true,
			start: startApache,
		},
		{
			key: "gunicorn", name: "gunicorn (nginx proxy)", python: true,
			nginx: `
        location / {
            proxy_pass http://gunicorn;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }
        location /stream/ {
            proxy_pass http://gunicorn;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
        }
`,
			start: func(e *env, c capacity, ct *contender) error {
				s := sock("gunicorn")
				os.Remove(s)
				kind := "sync"
				if c.threads > 1 {
					kind = "gthread"
				}
				args := []string{"gunicorn", "--bind", "unix:" + s, "--workers", strconv.Itoa(c.procs),
					"--worker-class", kind, "--threads", strconv.Itoa(c.threads),
					"--chdir", filepath.Dir(e.app), "--user", e.user, "--group", e.group,
					"--log-level", "warning", "--keep-alive", "5", "--backlog", "1024",
					strings.TrimSuffix(filepath.Base(e.app), ".wsgi") + ":application"}
				p, err := start(e.dir, "gunicorn", nil, args...)
				if err != nil {
					return err
				}
				ct.procs = append(ct.procs, p)
				return waitFor(p, 20*time.Second, "the gunicorn socket", dialOK("unix", s))
			},
		},
		{
			// ../shared/floor: wsgifcgi's design cut to the bone. One Python
			// process whatever the capacity; its worker ignores request bodies.
			key: "floor", name: "design floor (1 process at any capacity)",
			nginx: fastcgiBlock("floor"), skip: skips("upload"),
			start: startFloor,
		},
		{
			key: "gofcgi", name: "ceiling: Go net/http/fcgi (nginx FastCGI)",
			nginx: fastcgiBlock("gofcgi"), skip: skips("flask", "django"),
			start: func(e *env, c capacity, ct *contender) error {
				s := sock("gofcgi")
				os.Remove(s)
				p, err := start(e.dir, "gofcgi", nil, e.self, "fcgi-ceiling", "-listen", s)
				if err != nil {
					return err
				}
				ct.procs = append(ct.procs, p)
				return waitFor(p, 10*time.Second, "the Go FastCGI socket", dialOK("unix", s))
			},
		},
		{
			key: "nginx", name: "ceiling: nginx return 200", skip: skips("upload", "flask", "django"),
			nginx: fmt.Sprintf(`
        location / { return 200 "Hello, World!"; }
        location = /1m { alias %s; }
`, filepath.Join(e.dir, "app", "1m.bin")),
			start: func(*env, capacity, *contender) error { return nil },
		},
	}
}

// ids looks up user and group.
func ids(user, group string) (uid, gid int, err error) {
	u, err := osuser.Lookup(user)
	if err != nil {
		return 0, 0, err
	}
	g, err := osuser.LookupGroup(group)
	if err != nil {
		return 0, 0, err
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(g.Gid)
	return uid, gid, nil
}

// chownTo gives path to user:group (no-op when they are empty).
func chownTo(path, user, group string) error {
	if user == "" {
		return nil
	}
	uid, gid, err := ids(user, group)
	if err != nil {
		return err
	}
	return os.Chown(path, uid, gid)
}

// credential is user:group for a process (nil when they are empty).
func credential(user, group string) (*syscall.Credential, error) {
	if user == "" {
		return nil, nil
	}
	uid, gid, err := ids(user, group)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// buildFloor builds the design floor from its directory into dir (never
// copying its code anywhere else) and puts its worker beside it, where the
// workers' user can read it.
func buildFloor(e *env, src string) error {
	bin := filepath.Join(e.dir, "floor-bin")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build in %s: %v\n%s", src, err, out)
	}
	w, err := os.ReadFile(filepath.Join(src, "worker.py"))
	if err != nil {
		return err
	}
	e.floorW = filepath.Join(e.dir, "floor-worker.py")
	if err := os.WriteFile(e.floorW, w, 0o644); err != nil {
		return err
	}
	e.floor = bin
	return nil
}

// startFloor runs the design floor. It starts its worker as it is itself,
// so as root the whole floor runs as the workers' user, with its socket in
// a directory that user may write (as uWSGI's).
func startFloor(e *env, c capacity, ct *contender) error {
	if e.floor == "" {
		return fmt.Errorf("not built: %v", e.floorErr)
	}
	run := filepath.Join(e.dir, "floor-run")
	os.MkdirAll(run, 0o755)
	if err := chownTo(run, e.user, e.group); err != nil {
		return err
	}
	cred, err := credential(e.user, e.group)
	if err != nil {
		return err
	}
	s := filepath.Join(run, "floor.sock")
	os.Remove(s)
	p, err := startAs(e.dir, "floor", nil, cred, e.floor, "-socket", s, "-app", e.app,
		"-worker", e.floorW, "-python", "/usr/bin/python3")
	if err != nil {
		return err
	}
	ct.procs = append(ct.procs, p)
	return waitFor(p, 20*time.Second, "the floor's socket", dialOK("unix", s))
}

// bridgeConf is the wsgifcgi configuration: the app at / in [daemon.bench].
// The access log is written at level info to the bridge's log file.
func bridgeConf(e *env, name, sock string, c capacity, accessLog bool) string {
	level := "warn"
	if accessLog {
		level = "info"
	}
	return fmt.Sprintf(`[server]
listen = [%q]
socket-mode = "0666"
socket-prefix = %q
python-executable = "/usr/bin/python3"
log-level = %[9]q
log-format = "json"
access-log = %[10]t

[embedded]
processes = 1
threads = 1
user = %[4]q
group = %[5]q

[daemon.bench]
processes = %[6]d
threads = %[7]d
user = %[4]q
group = %[5]q

[[script-alias]]
url = "/"
path = %[8]q
process-group = "bench"
application-group = "%%{GLOBAL}"
`, "unix:"+sock, filepath.Join(e.dir, name+"-run", "wsgi"), "", e.user, e.group, c.procs, c.threads, e.app,
		level, accessLog)
}

func startBridge(e *env, name, sock string, c capacity, accessLog bool) (*proc, error) {
	conf := filepath.Join(e.dir, name+".toml")
	if err := os.WriteFile(conf, []byte(bridgeConf(e, name, sock, c, accessLog)), 0o644); err != nil {
		return nil, err
	}
	os.MkdirAll(filepath.Join(e.dir, name+"-run"), 0o755)
	os.Remove(sock)
	p, err := start(e.dir, name, nil, e.bridge, "serve", "-c", conf)
	if err != nil {
		return nil, err
	}
	return p, waitFor(p, 20*time.Second, "the wsgifcgi socket", dialOK("unix", sock))
}

func startApache(e *env, c capacity, ct *contender) error {
	if _, err := os.Stat("/usr/lib/apache2/modules/mod_wsgi.so"); err != nil {
		return fmt.Errorf("mod_wsgi is not installed")
	}
	root := filepath.Join(e.dir, "apache")
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	conf := filepath.Join(root, "httpd.conf")
	text := fmt.Sprintf(`ServerRoot %[1]s
DefaultRuntimeDir %[1]s/run
PidFile %[1]s/run/httpd.pid
Mutex file:%[1]s/run default
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule wsgi_module /usr/lib/apache2/modules/mod_wsgi.so
User %[2]s
Group %[3]s
ServerName 127.0.0.1
Listen 127.0.0.1:%[4]d
ErrorLog %[1]s/error.log
LogLevel warn
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
StartServers 2
ServerLimit 4
ThreadsPerChild 25
MaxRequestWorkers 100
MinSpareThreads 25
MaxSpareThreads 100
LimitRequestBody 0
WSGISocketPrefix %[1]s/run/wsgi
WSGIRestrictEmbedded On
WSGIDaemonProcess bench processes=%[5]d threads=%[6]d user=%[2]s group=%[3]s display-name=%%{GROUP}
WSGIProcessGroup bench
WSGIApplicationGroup %%{GLOBAL}
WSGIScriptAlias / %[7]s
<Directory %[8]s>
    Require all granted
</Directory>
`, root, e.user, e.group, ct.port, c.procs, c.threads, e.app, filepath.Dir(e.app))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	bin := "/usr/sbin/apache2"
	envv := []string{"APACHE_RUN_DIR=" + root + "/run", "APACHE_PID_FILE=" + root + "/run/httpd.pid",
		"APACHE_LOCK_DIR=" + root + "/run", "APACHE_LOG_DIR=" + root, "APACHE_RUN_USER=" + e.user,
		"APACHE_RUN_GROUP=" + e.group}
	p, err := start(e.dir, "apache", envv, bin, "-f", conf, "-DFOREGROUND")
	if err != nil {
		return err
	}
	ct.procs = append(ct.procs, p)
	return waitFor(p, 20*time.Second, "Apache's port", dialOK("tcp", fmt.Sprintf("127.0.0.1:%d", ct.port)))
}

// startNginx runs one nginx with a server block per contender behind it.
func startNginx(e *env, name string, cts []*contender) (*proc, error) {
	prefix := filepath.Join(e.dir, name)
	os.MkdirAll(prefix, 0o755)
	var ups, servers strings.Builder
	for _, ct := range cts {
		if ct.nginx == "" || ct.err != nil {
			continue
		}
		switch ct.key {
		case "gunicorn":
			fmt.Fprintf(&ups, "    upstream gunicorn { server unix:%s; keepalive 32; }\n", filepath.Join(e.dir, "gunicorn.sock"))
		case "nginx":
		case "uwsgi", "floor":
			fmt.Fprintf(&ups, "    upstream %[1]s { server unix:%[2]s; keepalive 32; }\n", ct.key, filepath.Join(e.dir, ct.key+"-run", ct.key+".sock"))
		default:
			fmt.Fprintf(&ups, "    upstream %s { server unix:%s; keepalive 32; }\n", ct.key, filepath.Join(e.dir, ct.key+".sock"))
		}
		fmt.Fprintf(&servers, "    server {\n        listen 127.0.0.1:%d;\n%s    }\n", ct.port, ct.nginx)
	}
	conf := fmt.Sprintf(`user root;
daemon off;
worker_processes 2;
worker_rlimit_nofile 16384;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    fastcgi_temp_path %[1]s/fastcgi;
    proxy_temp_path %[1]s/proxy;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    client_max_body_size 0;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
%[2]s
%[3]s}
`, prefix, ups.String(), servers.String())
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command("nginx", "-t", "-q", "-p", prefix, "-c", path).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t: %v\n%s", err, out)
	}
	p, err := start(e.dir, name, nil, "nginx", "-p", prefix, "-c", path)
	if err != nil {
		return nil, err
	}
	for _, ct := range cts {
		if ct.nginx == "" || ct.err != nil {
			continue
		}
		if err := waitFor(p, 10*time.Second, "nginx", dialOK("tcp", fmt.Sprintf("127.0.0.1:%d", ct.port))); err != nil {
			return p, err
		}
	}
	return p, nil
}
