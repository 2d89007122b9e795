package pool

import (
	"slices"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// DefaultAhead is how many requests a busy process may hold beyond its
// threads. Measured behind nginx with 16 clients on one thread: 2 ahead
// gave 11,500 requests/s, 8 gave 15,600 and 16 gave 18,000; a deeper
// queue in the pipe lets the worker read and answer more requests per
// system call.
const DefaultAhead = 16

// Spec is what a pool needs; the caller derives it from configuration.
type Spec struct {
	Name      string          // for logs: "process-group|application-group"
	Worker    pyworker.Config // template for each process
	Processes int
	// Ahead is how many requests a process may hold beyond its threads,
	// waiting in its pipe, when every thread of the pool is busy: the
	// worker then starts the next one without a round trip to the bridge,
	// and reads and answers several at once. 0: DefaultAhead, or its
	// threads when it has more.
	Ahead           int
	MaximumRequests int           // a process is replaced after this many requests (0: never)
	QueueTimeout    time.Duration // a queued request gets ErrQueueTimeout after this (0: waits for its client)
	Backlog         int           // requests that may wait for a thread (listen-backlog; 0: 100, mod_wsgi's default)
	ShutdownTimeout time.Duration // how long a stopping process may take to exit before SIGKILL

	// Timeouts of WSGIDaemonProcess; 0 disables each.
	RequestTimeout    time.Duration // a request running longer gets ErrRequestTimeout; its process is replaced
	InactivityTimeout time.Duration // a process with no request or I/O for this long is replaced
	DeadlockTimeout   time.Duration // a process whose heartbeat stops this long is killed (needs Worker.Heartbeat)
	GracefulTimeout   time.Duration // a replaced process still busy after this is stopped
	RestartInterval   time.Duration // every process is replaced after running this long

	Log zerolog.Logger

	// Events, when set, is told what happens to the processes (metrics).
	Events Events
}

func (s Spec) withDefaults() Spec {
	if s.Processes < 1 {
		s.Processes = 1
	}
	if s.Worker.Threads < 1 {
		s.Worker.Threads = 1
	}
	if s.Backlog <= 0 {
		s.Backlog = 100
	}
	if s.Ahead <= 0 {
		s.Ahead = max(DefaultAhead, s.Worker.Threads)
	}
	if s.ShutdownTimeout <= 0 {
		s.ShutdownTimeout = 5 * time.Second
	}
	return s
}

// SameSettings reports whether a pool of spec o would run exactly as one of
// s, so that a reload may keep the running pool: every setting is compared
// but the loggers and Events (which report, and do not change what runs).
// Of Worker.SysProcAttr, which holds the user and group, the Credential is
// compared.
func (s Spec) SameSettings(o Spec) bool {
	return s.Name == o.Name && s.Processes == o.Processes && s.Ahead == o.Ahead &&
		s.MaximumRequests == o.MaximumRequests && s.QueueTimeout == o.QueueTimeout &&
		s.Backlog == o.Backlog && s.ShutdownTimeout == o.ShutdownTimeout &&
		s.RequestTimeout == o.RequestTimeout && s.InactivityTimeout == o.InactivityTimeout &&
		s.DeadlockTimeout == o.DeadlockTimeout && s.GracefulTimeout == o.GracefulTimeout &&
		s.RestartInterval == o.RestartInterval && sameWorker(s.Worker, o.Worker)
}

func sameWorker(a, b pyworker.Config) bool {
	return a.Python == b.Python && a.Argv0 == b.Argv0 && a.Optimize == b.Optimize && a.Dir == b.Dir &&
		slices.Equal(a.Env, b.Env) && sameCredential(a.SysProcAttr, b.SysProcAttr) &&
		a.ProcessGroup == b.ProcessGroup && a.ApplicationGroup == b.ApplicationGroup &&
		a.Threads == b.Threads && a.Processes == b.Processes &&
		a.Multiprocess == b.Multiprocess && a.RunOnce == b.RunOnce &&
		slices.Equal(a.PythonPath, b.PythonPath) && a.RestrictStdin == b.RestrictStdin &&
		a.RestrictStdout == b.RestrictStdout && a.RestrictSignal == b.RestrictSignal &&
		slices.Equal(a.ImportScripts, b.ImportScripts) && a.StackSize == b.StackSize &&
		a.StartTimeout == b.StartTimeout && a.AbortWait == b.AbortWait &&
		a.ReceiveBufferSize == b.ReceiveBufferSize && a.SendBufferSize == b.SendBufferSize &&
		sameInt(a.Umask, b.Umask) && a.MemoryLimit == b.MemoryLimit &&
		a.VirtualMemoryLimit == b.VirtualMemoryLimit && a.CPUTimeLimit == b.CPUTimeLimit &&
		a.CPUPriority == b.CPUPriority && a.Heartbeat == b.Heartbeat &&
		a.Lend == b.Lend
}

func sameCredential(a, b *syscall.SysProcAttr) bool {
	var ca, cb *syscall.Credential
	if a != nil {
		ca = a.Credential
	}
	if b != nil {
		cb = b.Credential
	}
	if ca == nil || cb == nil {
		return ca == cb
	}
	return ca.Uid == cb.Uid && ca.Gid == cb.Gid && slices.Equal(ca.Groups, cb.Groups) && ca.NoSetGroups == cb.NoSetGroups
}

func sameInt(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
