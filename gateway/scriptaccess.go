package gateway

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wsgifcgi/wsgifcgi/groups"
)

// workerIdentity is who the processes of a process group run as: the
// configured user as root, else the bridge's own user.
type workerIdentity struct {
	cred *syscall.Credential
	name string // "www-data (uid 33)", for messages
}

// identityOf resolves the identity of daemon d's workers; ok is false when
// it cannot be known (as root without a user: the pool refuses to start).
func identityOf(d *groups.Daemon) (workerIdentity, bool) {
	if os.Geteuid() == 0 {
		cred, _, err := credential(d, groupLabel(d.Name))
		if err != nil {
			return workerIdentity{}, false
		}
		return workerIdentity{cred: cred, name: userName(cred.Uid)}, true
	}
	cred := &syscall.Credential{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid())}
	if gids, err := os.Getgroups(); err == nil {
		for _, g := range gids {
			cred.Groups = append(cred.Groups, uint32(g))
		}
	}
	return workerIdentity{cred: cred, name: userName(cred.Uid)}, true
}

func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}

// accessProblem says why a process with cred cannot open path (a file to
// read, or with dir a directory to enter), or "" when it can or path does
// not exist (that is a 404, not an access problem). It decides from mode
// bits, as the kernel does for a process without capabilities, along the
// path as written and along the path with its symlinks resolved.
func accessProblem(path string, cred *syscall.Credential, dir bool) string {
	if cred == nil || cred.Uid == 0 {
		return ""
	}
	paths := []string{filepath.Clean(path)}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != paths[0] {
		paths = append(paths, real)
	}
	for _, p := range paths {
		cur := "/"
		for _, part := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			if part == "" {
				continue
			}
			cur = filepath.Join(cur, part)
			var st syscall.Stat_t
			if syscall.Stat(cur, &st) != nil {
				return ""
			}
			last := cur == p
			want, verb := uint32(permExec), "enter"
			if last && !dir {
				want, verb = permRead, "read"
			}
			if !modeBitsAllow(&st, cred, want) {
				return fmt.Sprintf("cannot %s %s (%s, owner %s, group %s)", verb, cur,
					os.FileMode(st.Mode & 0o777).String()[1:], userName(st.Uid), groupName(st.Gid))
			}
		}
	}
	return ""
}

func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name
	}
	return id
}

func modeBitsAllow(st *syscall.Stat_t, cred *syscall.Credential, want uint32) bool {
	mode := uint32(st.Mode) & 0o777 // uint16 on some systems
	switch {
	case st.Uid == cred.Uid:
		return (mode>>6)&want == want
	case inGroup(st.Gid, cred):
		return (mode>>3)&want == want
	default:
		return mode&want == want
	}
}

// AccessWarnings lists, for `serve` and `check` at start, every configured
// script or script directory that the workers of its process group cannot
// read, with the fix.
func AccessWarnings(cfg *groups.Config) []string {
	ps := &pools{cfg: cfg}
	var out []string
	for _, p := range cfg.ConfiguredPaths() {
		if !p.Known {
			continue
		}
		d := ps.daemon(p.ProcessGroup)
		if d == nil {
			continue
		}
		id, ok := identityOf(d)
		if !ok {
			continue
		}
		problem := accessProblem(p.Path, id.cred, p.Dir)
		if problem == "" {
			continue
		}
		where := p.Where
		if where != "" {
			where += ": "
		}
		out = append(out, fmt.Sprintf("%s%s: the workers of process group %s run as %s, which %s; requests for it will get 403. "+
			"Fix: give that user access (chmod o+x on the directories, o+r on the scripts, or a group it is in), "+
			"move the application to a place it can read (such as /srv), or set user/group of the process group to one that can read it",
			where, p.Path, groupLabel(p.ProcessGroup), id.name, problem))
	}
	return out
}

// scriptAccess is the request-time check that the workers of rt's process
// group can read its script, as their user rather than the bridge's (as
// root the bridge reads anything). Verdicts are kept for a second, so a
// busy script costs a map lookup.
type scriptAccess struct {
	ids      sync.Map // process group -> workerIdentity (absent: unknown)
	verdicts sync.Map // accessKey -> accessVerdict
}

type accessKey struct {
	uid  uint32
	path string
}

type accessVerdict struct {
	problem string
	at      int64 // unix ns
}

const accessVerdictTTL = int64(time.Second)

// check returns an error naming the worker's user and the path when the
// workers cannot read the script; nil when they can (or it is missing: a 404
// follows).
func (sa *scriptAccess) check(ps *pools, rt *groups.Route, now time.Time) error {
	if rt.ScriptFilename == "" {
		return nil
	}
	v, ok := sa.ids.Load(rt.ProcessGroup)
	if !ok {
		d := ps.daemon(rt.ProcessGroup)
		if d == nil {
			return nil
		}
		id, known := identityOf(d)
		if !known {
			return nil
		}
		v, _ = sa.ids.LoadOrStore(rt.ProcessGroup, id)
	}
	id := v.(workerIdentity)
	key := accessKey{id.cred.Uid, rt.ScriptFilename}
	t := now.UnixNano()
	if e, ok := sa.verdicts.Load(key); ok && t-e.(accessVerdict).at < accessVerdictTTL {
		return verdictError(e.(accessVerdict).problem, rt, id)
	}
	problem := accessProblem(rt.ScriptFilename, id.cred, false)
	sa.verdicts.Store(key, accessVerdict{problem: problem, at: t})
	return verdictError(problem, rt, id)
}

func verdictError(problem string, rt *groups.Route, id workerIdentity) error {
	if problem == "" {
		return nil
	}
	return fmt.Errorf("script %s is not readable by the worker user %s of process group %s: %s",
		rt.ScriptFilename, id.name, groupLabel(rt.ProcessGroup), problem)
}
