package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/groups/pool"
	"github.com/wsgifcgi/wsgifcgi/metrics"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// Application groups are isolated by giving each its own worker processes:
// a pool per (process group, application group), started on first use.
type poolKey struct{ group, app string }

type pools struct {
	cfg     *groups.Config
	log     zerolog.Logger
	metrics *metrics.Metrics // nil: none

	mu    sync.Mutex
	m     map[poolKey]*pool.Pool
	specs map[poolKey]pool.Spec

	access scriptAccess // can the workers read a request's script?
	lend   bool         // workers may borrow the web server's connection (see oneIdentity)
}

func newPools(cfg *groups.Config, log zerolog.Logger, old *pools, m *metrics.Metrics) (*pools, error) {
	if err := Check(cfg); err != nil {
		return nil, err
	}
	ps := &pools{cfg: cfg, log: log, metrics: m, m: map[poolKey]*pool.Pool{}, specs: map[poolKey]pool.Spec{}}
	ps.lend = ps.oneIdentity()
	for _, d := range ps.daemons() {
		if os.Geteuid() != 0 && (d.User != "" || d.Group != "") {
			// As mod_wsgi: only root can switch users.
			log.Warn().Str("process_group", d.Name).Str("user", d.User).Str("group", d.Group).
				Msg("not running as root: user and group are ignored, workers run as the bridge's user")
		}
	}
	if old != nil {
		// The specs are derived (user look-ups, the search for python)
		// without the old generation's lock, which its requests take.
		old.mu.Lock()
		running, specs := maps.Clone(old.m), maps.Clone(old.specs)
		old.mu.Unlock()
		for k, p := range running {
			d := ps.daemon(k.group)
			if d == nil {
				continue
			}
			if s, err := ps.spec(d, k.app); err == nil && s.SameSettings(specs[k]) {
				ps.m[k], ps.specs[k] = p, s
			}
		}
	}
	for _, is := range cfg.ImportScripts() {
		if _, err := ps.getKey(poolKey{is.ProcessGroup, is.ApplicationGroup}); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// Check says whether every process group of cfg can start as configured
// (its user exists and is not root, it can run the python), as `serve`
// requires before a configuration replaces a working one; `check` runs it too.
func Check(cfg *groups.Config) error {
	ps := &pools{cfg: cfg, log: zerolog.Nop()}
	var errs []error
	for _, d := range ps.daemons() {
		if _, err := ps.spec(d, ""); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// oneIdentity reports whether every process group that requests may reach
// runs as one user and group. A worker lent the web server's connection for
// a body could read what that connection carries next: it gets the loan only
// where every request is served by processes of its own identity (which,
// being the same user, are no boundary to it anyway).
func (ps *pools) oneIdentity() bool {
	return sameIdentity(ps.daemons(), ps.cfg.Server.RestrictEmbedded, os.Geteuid() == 0)
}

// sameIdentity: whether the groups of ds that can run, run as one user and
// group. Only root switches users: otherwise every worker is the bridge's
// user. As root, a group without a user never runs (workers never run as
// root), and the embedded one serves nothing under restrict-embedded.
func sameIdentity(ds []*groups.Daemon, restrictEmbedded, root bool) bool {
	if !root {
		return true
	}
	var first *groups.Daemon
	for _, d := range ds {
		if d.User == "" || (d.Name == "" && restrictEmbedded) {
			continue
		}
		if first == nil {
			first = d
		} else if d.User != first.User || d.Group != first.Group {
			return false
		}
	}
	return true
}

func (ps *pools) daemons() []*groups.Daemon {
	ds := []*groups.Daemon{ps.cfg.Embedded}
	for _, d := range ps.cfg.Daemons {
		ds = append(ds, d)
	}
	return ds
}

func (ps *pools) daemon(name string) *groups.Daemon {
	if name == "" {
		return ps.cfg.Embedded
	}
	return ps.cfg.Daemons[name]
}

func (ps *pools) get(rt *groups.Route) (*pool.Pool, error) {
	return ps.getKey(poolKey{rt.ProcessGroup, rt.ApplicationGroup})
}

func (ps *pools) getKey(k poolKey) (*pool.Pool, error) {
	ps.mu.Lock()
	p := ps.m[k]
	ps.mu.Unlock()
	if p != nil {
		return p, nil
	}
	return ps.create(k)
}

// create starts the pool of k on its first request. Its spec (user and
// group look-ups, the search for python) is derived without the lock that
// every request takes.
func (ps *pools) create(k poolKey) (*pool.Pool, error) {
	d := ps.daemon(k.group)
	if d == nil {
		return nil, fmt.Errorf("process group %q is not defined", k.group)
	}
	s, err := ps.spec(d, k.app)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.m[k]; p != nil { // another request made it meanwhile
		return p, nil
	}
	p := pool.New(s, nil)
	ps.m[k], ps.specs[k] = p, s
	return p, nil
}

// spec derives the pool of daemon d for application group app.
func (ps *pools) spec(d *groups.Daemon, app string) (pool.Spec, error) {
	srv := &ps.cfg.Server
	name := d.Name
	label := groupLabel(name)
	wc := pyworker.Config{
		Optimize:           srv.PythonOptimize,
		ProcessGroup:       name,
		ApplicationGroup:   app,
		Threads:            d.Threads,
		Processes:          d.Processes,
		Multiprocess:       d.Multiprocess(),
		RunOnce:            d.Threads == 1 && d.MaximumRequests == 1,
		PythonPath:         append(append([]string(nil), srv.PythonPath...), d.PythonPath...),
		RestrictStdin:      srv.RestrictStdin,
		RestrictStdout:     srv.RestrictStdout,
		RestrictSignal:     srv.RestrictSignal,
		StackSize:          d.StackSize,
		StartTimeout:       d.StartupTimeout,
		ReceiveBufferSize:  d.ReceiveBufferSize,
		SendBufferSize:     d.SendBufferSize,
		Dir:                d.Home,
		Log:                ps.log.With().Str("process_group", name).Str("application_group", app).Logger(),
		MemoryLimit:        d.MemoryLimit,
		VirtualMemoryLimit: d.VirtualMemoryLimit,
		CPUTimeLimit:       int64(d.CPUTimeLimit / time.Second),
		CPUPriority:        d.CPUPriority,
		// A stuck application is given this long to notice its client left.
		AbortWait: 2 * time.Second,
		Lend:      ps.lend,
	}
	if d.UmaskSet {
		m := int(d.Umask)
		wc.Umask = &m
	}
	if d.DeadlockTimeout > 0 {
		wc.Heartbeat = min(time.Second, d.DeadlockTimeout/4)
	}
	wc.Argv0 = d.ProcessTitle()
	for _, is := range ps.cfg.ImportScripts() {
		if is.ProcessGroup == name && is.ApplicationGroup == app {
			wc.ImportScripts = append(wc.ImportScripts, is.Path)
		}
	}
	// WSGIPythonHome and WSGIPythonEggs become the interpreter's environment.
	var extraEnv []string
	pythonName := srv.PythonExecutable
	if srv.PythonHome != "" {
		if venv := venvPython(srv.PythonHome); venv != "" {
			// A virtualenv is entered by running its own interpreter (a
			// symlink: Python finds pyvenv.cfg from the path it was run as).
			pythonName = venv
		} else {
			extraEnv = append(extraEnv, "PYTHONHOME="+srv.PythonHome)
		}
	}
	if eggs := cmp.Or(d.PythonEggs, srv.PythonEggs); eggs != "" {
		extraEnv = append(extraEnv, "PYTHON_EGG_CACHE="+eggs)
	}
	if extraEnv != nil {
		wc.Env = append(os.Environ(), extraEnv...)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		var home string
		var err error
		cred, home, err = credential(d, label)
		if err != nil {
			return pool.Spec{}, err
		}
		wc.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if wc.Dir == "" {
			// mod_wsgi's default: the user's home, when there is one
			// (nobody's is /nonexistent).
			wc.Dir = "/"
			if st, err := os.Stat(home); err == nil && st.IsDir() {
				wc.Dir = home
			}
		}
	}
	python, err := findPython(pythonName, cred)
	if err != nil {
		return pool.Spec{}, fmt.Errorf("process group %s: %w", label, err)
	}
	wc.Python = python
	var events pool.Events
	if ps.metrics != nil {
		events = ps.metrics.Pool(label)
	}
	return pool.Spec{
		Events:            events,
		Name:              label + "|" + app,
		Worker:            wc,
		Processes:         d.Processes,
		MaximumRequests:   d.MaximumRequests,
		QueueTimeout:      d.QueueTimeout,
		Backlog:           d.ListenBacklog,
		ShutdownTimeout:   d.ShutdownTimeout,
		RequestTimeout:    d.RequestTimeout,
		InactivityTimeout: d.InactivityTimeout,
		DeadlockTimeout:   d.DeadlockTimeout,
		GracefulTimeout:   d.GracefulTimeout,
		RestartInterval:   d.RestartInterval,
		Log:               ps.log,
	}, nil
}

// credential resolves the user and group a daemon's processes run as when
// the bridge is root. Workers never run as root.
func credential(d *groups.Daemon, label string) (*syscall.Credential, string, error) {
	if d.User == "" {
		return nil, "", fmt.Errorf("process group %s: the bridge runs as root, so a user is required (workers never run as root)", label)
	}
	u, err := lookupUser(d.User)
	if err != nil {
		return nil, "", fmt.Errorf("process group %s: user %q: %w", label, d.User, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if uid == 0 {
		return nil, "", fmt.Errorf("process group %s: user %q is root; workers never run as root", label, d.User)
	}
	if d.Group != "" {
		g, err := lookupGroup(d.Group)
		if err != nil {
			return nil, "", fmt.Errorf("process group %s: group %q: %w", label, d.Group, err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if gids, err := u.GroupIds(); err == nil {
		for _, s := range gids {
			if n, err := strconv.ParseUint(s, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, u.HomeDir, nil
}

// lookupUser accepts a name or "#uid", as mod_wsgi does.
func lookupUser(s string) (*user.User, error) {
	if id, ok := strings.CutPrefix(s, "#"); ok {
		u, err := user.LookupId(id)
		if err != nil {
			return &user.User{Uid: id, Gid: id, Username: s}, nil
		}
		return u, nil
	}
	return user.Lookup(s)
}

func lookupGroup(s string) (*user.Group, error) {
	if id, ok := strings.CutPrefix(s, "#"); ok {
		return &user.Group{Gid: id, Name: s}, nil
	}
	return user.LookupGroup(s)
}

func (ps *pools) restart() {
	for _, p := range ps.all() {
		p.Restart(pool.ReasonSignal)
	}
}

func (ps *pools) closeAll() { closePools(ps.all()) }

func (ps *pools) all() []*pool.Pool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return slices.Collect(maps.Values(ps.m))
}

// handOver logs what a reload did to each pool of ps: next kept it (its
// settings did not change), replaced it (they did: next starts a new one
// on its next request) or removed it (its process group is gone). It
// returns the pools to close, whose processes are counted as replaced by
// the reload.
func (ps *pools) handOver(next *pools) []*pool.Pool {
	next.mu.Lock()
	kept := map[*pool.Pool]bool{}
	for _, p := range next.m {
		kept[p] = true
	}
	next.mu.Unlock()
	ps.mu.Lock()
	running, specs := maps.Clone(ps.m), maps.Clone(ps.specs)
	ps.mu.Unlock()
	var drop []*pool.Pool
	for _, k := range slices.SortedFunc(maps.Keys(running), func(a, b poolKey) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.app, b.app))
	}) {
		p, s := running[k], specs[k]
		pids := p.Pids()
		line := ps.log.Info().Str("pool", s.Name).Int("workers", len(pids))
		switch {
		case kept[p]:
			line.Msg("reload: pool kept, its settings did not change")
			continue
		case next.daemon(k.group) != nil:
			line.Msg("reload: pool replaced, its settings changed; its workers finish their requests")
		default:
			line.Msg("reload: pool removed with its process group; its workers finish their requests")
		}
		drop = append(drop, p)
		if s.Events != nil {
			// Their successors are the new pool's processes.
			for range pids {
				s.Events.WorkerReplaced(pool.ReasonReload)
			}
		}
	}
	return drop
}

// groupLabel names a process group in logs and metrics: %{GLOBAL} for the
// embedded one.
func groupLabel(name string) string {
	if name == "" {
		return "%{GLOBAL}"
	}
	return name
}

func closePools(ps []*pool.Pool) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.Close() }()
	}
	wg.Wait()
}

// venvPython is the interpreter of the virtualenv at home, or "" when home
// is not one (then it is a PYTHONHOME).
func venvPython(home string) string {
	if _, err := os.Stat(filepath.Join(home, "pyvenv.cfg")); err != nil {
		return ""
	}
	for _, name := range []string{"python3", "python"} {
		if p := filepath.Join(home, "bin", name); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
