package pyworker

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// frameConsts maps each protocol constant of frame.go to its name in the
// worker's Python and holds its Go value.
var frameConsts = map[string]struct {
	py string
	v  int
}{
	"tConfig":   {"T_CONFIG", tConfig},
	"tRequest":  {"T_REQUEST", tRequest},
	"tBody":     {"T_BODY", tBody},
	"tCredit":   {"T_CREDIT", tCredit},
	"tAbort":    {"T_ABORT", tAbort},
	"tShutdown": {"T_SHUTDOWN", tShutdown},
	"tLend":     {"T_LEND", tLend},
	"tReturn":   {"T_RETURN", tReturn},
	"tReady":    {"T_READY", tReady},
	"tHeaders":  {"T_HEADERS", tHeaders},
	"tData":     {"T_DATA", tData},
	"tWant":     {"T_WANT", tWant},
	"tLog":      {"T_LOG", tLog},
	"tEnd":      {"T_END", tEnd},
	"tPing":     {"T_PING", tPing},
	"tResponse": {"T_RESPONSE", tResponse},

	"fNoBody":  {"F_NOBODY", fNoBody},
	"fEOF":     {"F_EOF", fEOF},
	"fErr":     {"F_ERR", fErr},
	"fStalled": {"F_STALLED", fStalled},

	"outOK":        {"OUT_OK", outOK},
	"outNotFound":  {"OUT_NOT_FOUND", outNotFound},
	"outAppError":  {"OUT_APP_ERROR", outAppError},
	"outTruncated": {"OUT_TRUNCATED", outTruncated},
	"outAborted":   {"OUT_ABORTED", outAborted},
	"outClosed":    {"OUT_CLOSED", outClosed},
	"outReload":    {"OUT_RELOAD", outReload},

	"levelInfo":  {"L_INFO", levelInfo},
	"levelWarn":  {"L_WARN", levelWarn},
	"levelError": {"L_ERROR", levelError},

	// Not matched by protocolName, but both sides must agree on them.
	"bodyWindow": {"BODY_WINDOW", bodyWindow},
	"maxData":    {"MAX_DATA", maxData},
	"maxHead":    {"HEAD_MAX", maxHead},
	"maxWhole":   {"WHOLE_MAX", maxWhole},
	"maxLog":     {"LOG_MAX", maxLog},
}

// protocolName matches the Go names of frame types, flags, outcomes and
// log levels, and pyProtocolName their Python names.
var (
	protocolName   = regexp.MustCompile(`^(t|f|out|level)[A-Z]`)
	pyProtocolName = regexp.MustCompile(`^(T|F|OUT|L)_[A-Z0-9_]+$`)
)

// TestFrameConstantsAgree checks that frame.go and the worker's Python
// declare the same frame types, flags, outcomes and log levels with the
// same values, and that neither side has one the other lacks.
func TestFrameConstantsAgree(t *testing.T) {
	py := pythonConstants(t)

	// Every protocol constant of frame.go must be in frameConsts, so that
	// one added on the Go side only cannot go unnoticed.
	for _, name := range goConstNames(t, "frame.go") {
		if _, ok := frameConsts[name]; !ok && protocolName.MatchString(name) {
			t.Errorf("frame.go declares %s, which frameConsts does not map to a Python name", name)
		}
	}
	mapped := map[string]bool{}
	for goName, c := range frameConsts {
		mapped[c.py] = true
		v, ok := py[c.py]
		switch {
		case !ok:
			t.Errorf("frame.go declares %s = %d, the worker's Python has no %s", goName, c.v, c.py)
		case v != c.v:
			t.Errorf("%s = %d in frame.go, but %s = %d in the worker's Python", goName, c.v, c.py, v)
		}
	}
	for name, v := range py {
		if !mapped[name] && pyProtocolName.MatchString(name) {
			t.Errorf("the worker's Python declares %s = %d, which frame.go lacks", name, v)
		}
	}
}

// pythonConstants returns the module-level integer constants of the
// worker's Python modules as embedded in the binary: NAME = N,
// NAME = A * B and A, B = 1, 2.
func pythonConstants(t *testing.T) map[string]int {
	t.Helper()
	assign := regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*(?:, *[A-Z][A-Z0-9_]*)*) *= *([0-9][0-9 *,]*?) *(?:#.*)?$`)
	anyAssign := regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*(?:, *[A-Z][A-Z0-9_]*)*) *=[^=]`)
	consts := map[string]int{}
	where := map[string]string{}
	files, err := fs.Glob(workerFS, workerPackage+"/*.py")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		src, err := workerFS.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range assign.FindAllStringSubmatch(string(src), -1) {
			names, values := strings.Split(m[1], ","), strings.Split(m[2], ",")
			if len(names) != len(values) {
				continue
			}
			for i, n := range names {
				n = strings.TrimSpace(n)
				v, ok := product(values[i])
				if !ok {
					t.Fatalf("%s: cannot read %s = %s", path, n, values[i])
				}
				if old, seen := consts[n]; seen && old != v {
					t.Errorf("%s = %d in %s but %d in %s", n, old, where[n], v, path)
				}
				consts[n], where[n] = v, path
			}
		}
		// A protocol name set in a form the pattern cannot read must not
		// go unchecked.
		for _, m := range anyAssign.FindAllStringSubmatch(string(src), -1) {
			for _, n := range strings.Split(m[1], ",") {
				if n = strings.TrimSpace(n); pyProtocolName.MatchString(n) {
					if _, ok := consts[n]; !ok {
						t.Errorf("%s: cannot read the value of %s", path, n)
					}
				}
			}
		}
	}
	if len(consts) == 0 {
		t.Fatal("no constants found in the worker's Python")
	}
	return consts
}

// product evaluates "N" or "N * M * ...".
func product(s string) (int, bool) {
	p := 1
	for _, f := range strings.Split(s, "*") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return 0, false
		}
		p *= n
	}
	return p, true
}

// goConstNames returns the names of the constants declared in a Go file.
func goConstNames(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					names = append(names, n.Name)
				}
			}
		}
	}
	return names
}
