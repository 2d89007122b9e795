package groups

// The raw* types mirror one TOML file. Every leaf is a pointer (or a nil-able
// slice/map) so "absent" stays distinguishable from a zero value: contexts and
// files layer on top of each other and only keys that are present override.
// They are filled by decodeInto (decode.go), which walks the parsed TOML tree
// against the `toml` tags, so unknown keys and type errors are all collected.

type rawFile struct {
	Server           *rawServer            `toml:"server"`
	Embedded         *rawDaemon            `toml:"embedded"`
	VHost            *rawVHost             `toml:"vhost"`
	Daemon           map[string]*rawDaemon `toml:"daemon"`
	ImportScript     []*rawImport          `toml:"import-script"`
	ScriptAlias      []*rawAlias           `toml:"script-alias"`
	ScriptAliasMatch []*rawAliasMatch      `toml:"script-alias-match"`
	Location         []*rawLocation        `toml:"location"`
	Directory        []*rawDirectory       `toml:"directory"`
}

// rawContext holds the context keys (WSGIApplicationGroup and friends),
// allowed in every context; embedded anonymously it is flattened.
type rawContext struct {
	ApplicationGroup  *string           `toml:"application-group"`
	ProcessGroup      *string           `toml:"process-group"`
	CallableObject    *string           `toml:"callable-object"`
	PassAuthorization *bool             `toml:"pass-authorization"`
	ScriptReloading   *bool             `toml:"script-reloading"`
	ReloadMechanism   *string           `toml:"reload-mechanism"`
	OutputBuffering   *bool             `toml:"output-buffering"`
	RestrictProcess   *[]string         `toml:"restrict-process"`
	Env               map[string]string `toml:"env"`
	AuthType          *string           `toml:"auth-type"`
	AuthName          *string           `toml:"auth-name"`
	Require           *[]string         `toml:"require"`
	AuthUserScript    *string           `toml:"auth-user-script"`
	AuthGroupScript   *string           `toml:"auth-group-script"`
	AccessScript      *string           `toml:"access-script"`
	// AuthApplicationGroup is the application-group= option of the three
	// auth directives: the interpreter of the embedded pool they run in.
	AuthApplicationGroup *string `toml:"auth-application-group"`
}

type rawServer struct {
	rawContext
	Listen              *[]string `toml:"listen"`
	ServerName          *string   `toml:"server-name"`
	SocketPrefix        *string   `toml:"socket-prefix"`
	SocketMode          *string   `toml:"socket-mode"`
	WebServerAddrs      *[]string `toml:"web-server-addrs"`
	PythonExecutable    *string   `toml:"python-executable"`
	PythonHome          *string   `toml:"python-home"`
	PythonPath          *[]string `toml:"python-path"`
	PythonEggs          *string   `toml:"python-eggs"`
	PythonOptimize      *int64    `toml:"python-optimize"`
	RestrictEmbedded    *bool     `toml:"restrict-embedded"`
	RestrictStdin       *bool     `toml:"restrict-stdin"`
	RestrictStdout      *bool     `toml:"restrict-stdout"`
	RestrictSignal      *bool     `toml:"restrict-signal"`
	CaseSensitivity     *bool     `toml:"case-sensitivity"`
	LazyInitialization  *bool     `toml:"lazy-initialization"`
	AcceptMutex         *string   `toml:"accept-mutex"`
	LogLevel            *string   `toml:"log-level"`
	LogFormat           *string   `toml:"log-format"`
	AccessLog           *bool     `toml:"access-log"`
	AllowEncodedSlashes *bool     `toml:"allow-encoded-slashes"`
	ChunkedRequest      *bool     `toml:"chunked-request"`
	TrustRemoteUser     *bool     `toml:"trust-remote-user"`
	Metrics             *string   `toml:"metrics"`
	MaxConnections      *int64    `toml:"max-connections"`
}

type rawVHost struct {
	rawContext
	ServerName  *string   `toml:"server-name"`
	ServerAlias *[]string `toml:"server-alias"`
	Port        *int64    `toml:"port"`
}

// rawDaemon is [daemon.NAME] and [embedded] (WSGIDaemonProcess options).
type rawDaemon struct {
	User               *string   `toml:"user"`
	Group              *string   `toml:"group"`
	Processes          *int64    `toml:"processes"`
	Threads            *int64    `toml:"threads"`
	Umask              *string   `toml:"umask"`
	Home               *string   `toml:"home"`
	PythonPath         *[]string `toml:"python-path"`
	PythonEggs         *string   `toml:"python-eggs"`
	StackSize          *int64    `toml:"stack-size"`
	MaximumRequests    *int64    `toml:"maximum-requests"`
	InactivityTimeout  *int64    `toml:"inactivity-timeout"`
	DeadlockTimeout    *int64    `toml:"deadlock-timeout"`
	ShutdownTimeout    *int64    `toml:"shutdown-timeout"`
	RequestTimeout     *int64    `toml:"request-timeout"`
	QueueTimeout       *int64    `toml:"queue-timeout"`
	GracefulTimeout    *int64    `toml:"graceful-timeout"`
	RestartInterval    *int64    `toml:"restart-interval"`
	StartupTimeout     *int64    `toml:"startup-timeout"`
	DisplayName        *string   `toml:"display-name"`
	ReceiveBufferSize  *int64    `toml:"receive-buffer-size"`
	SendBufferSize     *int64    `toml:"send-buffer-size"`
	MemoryLimit        *int64    `toml:"memory-limit"`
	VirtualMemoryLimit *int64    `toml:"virtual-memory-limit"`
	CPUTimeLimit       *int64    `toml:"cpu-time-limit"`
	CPUPriority        *int64    `toml:"cpu-priority"`
	ListenBacklog      *int64    `toml:"listen-backlog"`
	SocketTimeout      *int64    `toml:"socket-timeout"`
	BodyBufferSize     *int64    `toml:"body-buffer-size"`
}

type rawImport struct {
	Path             *string `toml:"path"`
	ProcessGroup     *string `toml:"process-group"`
	ApplicationGroup *string `toml:"application-group"`
}

type rawAlias struct {
	rawContext
	URL  *string `toml:"url"`
	Path *string `toml:"path"`
}

type rawAliasMatch struct {
	rawContext
	Regex *string `toml:"regex"`
	Path  *string `toml:"path"`
}

type rawLocation struct {
	rawContext
	URL *string `toml:"url"`
}

type rawDirectory struct {
	rawContext
	Path       *string   `toml:"path"`
	Handler    *string   `toml:"handler"`
	Extensions *[]string `toml:"extensions"`
}
