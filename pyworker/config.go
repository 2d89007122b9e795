package pyworker

import (
	"encoding/json"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Config describes one worker process.
type Config struct {
	Python       string   // executable: a path or a name looked up on PATH; "" = python3
	Argv0        string   // process title (display-name) shown by ps; "" = unchanged
	Optimize     int      // 1: -O, 2: -OO
	Dir          string   // working directory
	Env          []string // environment of the process; nil inherits the bridge's
	SysProcAttr  *syscall.SysProcAttr
	ProcessGroup string // for logs and the worker's mod_wsgi module
	// ApplicationGroup is the one application group this process runs.
	ApplicationGroup string
	Threads          int      // request threads; wsgi.multithread = Threads > 1
	Processes        int      // processes of the group: mod_wsgi.maximum_processes; 0 = 1
	Multiprocess     bool     // wsgi.multiprocess
	RunOnce          bool     // wsgi.run_once
	PythonPath       []string // site.addsitedir each before anything is loaded
	RestrictStdin    bool
	RestrictStdout   bool
	RestrictSignal   bool
	ImportScripts    []string      // WSGIImportScript: loaded before READY
	StackSize        int           // threading.stack_size of request threads; 0 = default
	StartTimeout     time.Duration // READY must arrive within; 0 = 30 s
	// AbortWait bounds how long Serve waits, once the client is gone, for the
	// application to stop; 0 = 10 s.
	AbortWait         time.Duration
	Log               zerolog.Logger // the worker's stdout/stderr lines and its own events
	ReceiveBufferSize int            // F_SETPIPE_SZ of the pipe toward the worker
	SendBufferSize    int            // F_SETPIPE_SZ of the pipe from the worker

	Umask              *int  // umask of the process; nil inherits the bridge's
	MemoryLimit        int64 // RLIMIT_DATA bytes (memory-limit); 0: none
	VirtualMemoryLimit int64 // RLIMIT_AS bytes (virtual-memory-limit); 0: none
	CPUTimeLimit       int64 // RLIMIT_CPU seconds (cpu-time-limit); 0: none
	CPUPriority        int   // setpriority value (cpu-priority); 0: unchanged
	// Heartbeat is how often the worker proves its interpreter can run
	// Python code (LastHeartbeat); 0: no heartbeat.
	Heartbeat time.Duration
	// Lend lets a request body's source lend the worker its connection
	// (see Lender). The worker then holds the web server's connection, which
	// may carry other requests afterwards: only for workers that every
	// request may reach anyway.
	Lend bool
}

func (c Config) withDefaults() Config {
	if c.Python == "" {
		c.Python = "python3"
	}
	if c.Threads < 1 {
		c.Threads = 1
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.AbortWait <= 0 {
		c.AbortWait = 10 * time.Second
	}
	return c
}

// workerConfig is the CONFIG frame: what the worker needs to set itself up.
type workerConfig struct {
	Title            string   `json:"title,omitempty"`
	ProcessGroup     string   `json:"process_group"`
	ApplicationGroup string   `json:"application_group"`
	Threads          int      `json:"threads"`
	Processes        int      `json:"processes,omitempty"`
	Multiprocess     bool     `json:"multiprocess"`
	RunOnce          bool     `json:"run_once"`
	PythonPath       []string `json:"python_path,omitempty"`
	RestrictStdin    bool     `json:"restrict_stdin"`
	RestrictStdout   bool     `json:"restrict_stdout"`
	RestrictSignal   bool     `json:"restrict_signal"`
	ImportScripts    []string `json:"import_scripts,omitempty"`
	StackSize        int      `json:"stack_size,omitempty"`

	Umask              *int    `json:"umask,omitempty"`
	MemoryLimit        int64   `json:"memory_limit,omitempty"`
	VirtualMemoryLimit int64   `json:"virtual_memory_limit,omitempty"`
	CPUTimeLimit       int64   `json:"cpu_time_limit,omitempty"`
	CPUPriority        int     `json:"cpu_priority,omitempty"`
	Heartbeat          float64 `json:"heartbeat,omitempty"`
	Lend               bool    `json:"lend,omitempty"`
}

func (c Config) frame() ([]byte, error) {
	js, err := json.Marshal(workerConfig{
		Title: c.Argv0, ProcessGroup: c.ProcessGroup, ApplicationGroup: c.ApplicationGroup,
		Threads: c.Threads, Processes: c.Processes, Multiprocess: c.Multiprocess, RunOnce: c.RunOnce,
		PythonPath: c.PythonPath, RestrictStdin: c.RestrictStdin, RestrictStdout: c.RestrictStdout,
		RestrictSignal: c.RestrictSignal, ImportScripts: c.ImportScripts, StackSize: c.StackSize,
		Umask: c.Umask, MemoryLimit: c.MemoryLimit, VirtualMemoryLimit: c.VirtualMemoryLimit,
		CPUTimeLimit: c.CPUTimeLimit, CPUPriority: c.CPUPriority, Heartbeat: c.Heartbeat.Seconds(),
		Lend: c.Lend,
	})
	if err != nil {
		return nil, err
	}
	b := make([]byte, headerSize+len(js))
	putHeader(b, tConfig, 0, 0, len(js))
	copy(b[headerSize:], js)
	return b, nil
}

// args is the interpreter's command line: the real executable (so the
// interpreter finds its prefix and any virtualenv) and a bootstrap that runs
// the worker's modules handed over on fd 5.
func (c Config) args() []string {
	var a []string
	switch {
	case c.Optimize == 1:
		a = append(a, "-O")
	case c.Optimize >= 2:
		a = append(a, "-OO")
	}
	return append(a, "-c", bootstrap)
}

// SourceDir is where the worker's files are in this repository, the start
// of the file names its code carries in tracebacks. The sources stay
// embedded in the binary: _wsgifcgi/boot.py imports them from memory and
// serves their lines to linecache. __main__ gets no __file__:
// multiprocessing's spawn would try to run that path in its children.
const SourceDir = "wsgifcgi/pyworker/"

// workerPackage is the worker's Python package, named apart from the
// applications' modules.
const workerPackage = "_wsgifcgi"

// bootstrap runs boot.py, the first module on fd 5, in a module of its own;
// boot.start imports the others and runs the worker. It first drops the
// current directory (the daemon's home) that -c put at the head of
// sys.path, before any import could find a json.py or select.py there
// instead of the standard library's.
const bootstrap = "import os,sys;sys.path[0]==''and sys.path.pop(0);" +
	"f=os.fdopen(5,'rb');s=f.read().split(b'\\0');f.close();" +
	"b=type(sys)('" + workerPackage + ".boot');del f,os,sys;" +
	"exec(compile(s[2],s[1].decode(),'exec'),b.__dict__);b.start(s)"
