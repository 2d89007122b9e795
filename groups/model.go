// Package groups is the TOML model of the mod_wsgi directives: it loads and
// validates the configuration (Load), maps each FastCGI request to a script,
// a process group and an application group (Route), and prints the resolved
// routes (WriteTable). It is pure logic: no processes, no sockets, no Python.
// A *Config is read-only after Load and safe for concurrent use.
package groups

import (
	"os"
	"time"
)

// Config is the whole loaded configuration.
type Config struct {
	Server   Server
	Embedded *Daemon            // the %{GLOBAL} process group (mod_wsgi embedded mode); Name ""
	Daemons  map[string]*Daemon // [daemon.NAME] of every context; names are unique server-wide
	VHosts   []*VHost           // in file name order
	Warnings []string           // problems that are not fatal, e.g. a vhost daemon selected elsewhere
	Files    []string           // the files read, in order

	// LookupEnv is the last resort of %{ENV:name}, after the request's params
	// and the context's env. Load sets os.LookupEnv; tests may replace it
	// before the first Route call.
	LookupEnv func(name string) (string, bool)

	server  *scope // the server context (requests that match no vhost)
	imports []ImportScript
}

// Server holds the [server] settings of the server context.
type Server struct {
	Listen              []string // "unix:/path", "tcp:HOST:PORT", "fd:N"; empty: the command decides
	ServerName          string   // NAME for %{SERVER}/%{RESOURCE} outside vhosts; "": SERVER_NAME param
	SocketPrefix        string
	SocketMode          os.FileMode
	WebServerAddrs      []string
	PythonExecutable    string
	PythonHome          string
	PythonPath          []string
	PythonEggs          string
	PythonOptimize      int
	RestrictEmbedded    bool
	RestrictStdin       bool
	RestrictStdout      bool
	RestrictSignal      bool
	CaseSensitivity     bool
	LazyInitialization  bool
	AcceptMutex         string // accepted for parity; no effect
	LogLevel            string // trace|debug|info|warn|error|fatal|panic|disabled
	LogFormat           string // json|console
	AccessLog           bool
	AllowEncodedSlashes bool
	ChunkedRequest      bool
	TrustRemoteUser     bool
	Metrics             string // "tcp:HOST:PORT" or "unix:/path": serve /metrics there; "": off
	MaxConnections      int    // open FastCGI connections at most (FCGI_MAX_CONNS); see DefaultMaxConnections
}

// DefaultMaxConnections is max-connections when unset: enough for the
// keep-alive pools of several busy front ends (an idle connection costs
// the bridge a file descriptor and well under 1 KiB), well within the
// open-file limit of a systemd service (LimitNOFILE=65536 in dist/). At
// the limit the longest idle connection is closed to make room.
const DefaultMaxConnections = 16384

// Daemon is one process group: [daemon.NAME] (WSGIDaemonProcess) or [embedded].
type Daemon struct {
	Name  string // "" for the embedded pool
	VHost string // server-name of the defining vhost; "" = server context
	File  string // file that defined it ("" for a default embedded pool)

	User, Group  string // unset in a daemon: the [embedded] user/group
	Processes    int
	ProcessesSet bool // processes given explicitly (wsgi.multiprocess rule); see Multiprocess
	Threads      int
	Umask        os.FileMode
	UmaskSet     bool // false: inherit the bridge's umask
	Home         string
	PythonPath   []string
	PythonEggs   string
	StackSize    int

	MaximumRequests   int
	InactivityTimeout time.Duration
	DeadlockTimeout   time.Duration
	ShutdownTimeout   time.Duration
	RequestTimeout    time.Duration
	QueueTimeout      time.Duration
	GracefulTimeout   time.Duration
	RestartInterval   time.Duration
	StartupTimeout    time.Duration

	DisplayName       string // "%{GROUP}" shows as "(wsgi:NAME)"; see ProcessTitle
	ReceiveBufferSize int
	SendBufferSize    int

	// SocketTimeout ends a request whose body sends nothing for this long
	// (408); mod_wsgi's socket-timeout, Apache's Timeout by default.
	SocketTimeout time.Duration
	// BodyBufferSize: a body up to this size is read whole before the
	// request takes a worker thread (one declared larger: its first 64
	// KiB, at most this many bytes), so that a slow or stalled client
	// never holds a thread.
	BodyBufferSize int

	// Accepted now, enforced by a later issue.
	MemoryLimit        int64
	VirtualMemoryLimit int64
	CPUTimeLimit       time.Duration
	CPUPriority        int
	ListenBacklog      int
}

// Multiprocess is wsgi.multiprocess for this pool: for a daemon, whether
// processes was given at all (even 1, as mod_wsgi does); for the embedded
// pool, whether it runs more than one process.
func (d *Daemon) Multiprocess() bool {
	if d.Name == "" {
		return d.Processes > 1
	}
	return d.ProcessesSet
}

// ProcessTitle is the name to show in ps, or "" to keep the default.
func (d *Daemon) ProcessTitle() string {
	if d.DisplayName == "%{GROUP}" {
		return "(wsgi:" + d.Name + ")"
	}
	return d.DisplayName
}

// VHost is one [vhost] file.
type VHost struct {
	ServerName    string
	ServerAliases []string
	Port          int // 0: any port
	File          string

	scope *scope
}

// ImportScript is one [[import-script]] (WSGIImportScript), with the groups expanded:
// ProcessGroup "" is the embedded pool, ApplicationGroup "" the %{GLOBAL} interpreter.
type ImportScript struct {
	Path, ProcessGroup, ApplicationGroup string
	VHost                                string // server-name of the defining vhost; "" = server context
}

// ImportScripts lists the scripts to preload, in file order.
func (c *Config) ImportScripts() []ImportScript {
	return append([]ImportScript(nil), c.imports...)
}

// Params gives a request's FastCGI params; for a repeated name the last value wins.
type Params interface {
	Get(name string) (string, bool)
}

// EnvVar is one SetEnv-style variable of the context's env.
type EnvVar struct{ Name, Value string }

// Auth is what the context says about authentication (enforced elsewhere).
type Auth struct {
	Type         string   // "", "Basic" or "Digest"
	Name         string   // realm
	Require      []string // e.g. "valid-user", "user a b", "group g"
	UserScript   string   // WSGIAuthUserScript
	GroupScript  string   // WSGIAuthGroupScript
	AccessScript string   // WSGIAccessScript
	// ApplicationGroup is where the scripts run in the embedded pool
	// (application-group= of the directives), expanded; "" is %{GLOBAL}.
	ApplicationGroup string
}

// Route is the outcome of mapping one request.
type Route struct {
	VHost             string // server-name of the vhost that answered; "" = server context
	ScriptFilename    string // absolute path of the script to run
	ScriptMTime       int64  // its modification time when routed (ns since the epoch; 0: unknown)
	ScriptName        string // SCRIPT_NAME as mod_wsgi sets it
	PathInfo          string // PATH_INFO as mod_wsgi sets it
	ProcessGroup      string // "" = %{GLOBAL} (embedded pool), else a daemon name
	Daemon            *Daemon
	ApplicationGroup  string // expanded; "" = %{GLOBAL}
	CallableObject    string
	ScriptReloading   bool
	ReloadMechanism   string // "module" or "process"
	PassAuthorization bool
	OutputBuffering   bool
	Env               []EnvVar // merged context env, sorted by name
	Auth              Auth
}

// RouteError is a request that cannot be routed, with the HTTP status to answer.
type RouteError struct {
	Status int
	Msg    string
}

func (e *RouteError) Error() string { return e.Msg }

// Defaults of the request body settings of a process group.
const (
	// DefaultSocketTimeout is mod_wsgi's socket-timeout default (Apache's
	// Timeout): a request body may send nothing for this long.
	DefaultSocketTimeout = 60 * time.Second
	// DefaultBodyBufferSize: a body up to this size arrives whole before
	// the request takes a worker thread. The bridge keeps it in memory
	// within a budget for all bodies, and spools past that.
	DefaultBodyBufferSize = 1 << 20
)
