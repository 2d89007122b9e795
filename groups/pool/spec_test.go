package pool

import (
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// SameSettings tells every setting apart but the loggers and Events: a
// field added to Spec or pyworker.Config fails this test until it is
// compared (or said not to matter here).
func TestSameSettingsComparesEveryField(t *testing.T) {
	ignored := map[string]bool{"Log": true, "Events": true, "Worker.Log": true}
	fields := func(typ reflect.Type, prefix string) (names []string) {
		for f := range typ.Fields() {
			names = append(names, prefix+f.Name)
		}
		return names
	}
	all := append(fields(reflect.TypeFor[Spec](), ""), fields(reflect.TypeFor[pyworker.Config](), "Worker.")...)
	for _, name := range all {
		if name == "Worker" || ignored[name] {
			continue
		}
		var b Spec
		v := reflect.ValueOf(&b).Elem()
		if w, ok := strings.CutPrefix(name, "Worker."); ok {
			v = v.FieldByName("Worker").FieldByName(w)
		} else {
			v = v.FieldByName(name)
		}
		if name == "Worker.SysProcAttr" {
			b.Worker.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1}}
		} else if !setNonZero(v) {
			t.Errorf("%s: the test cannot set a %s", name, v.Type())
			continue
		}
		if (Spec{}).SameSettings(b) || b.SameSettings(Spec{}) {
			t.Errorf("SameSettings does not compare %s", name)
		}
	}

	a := Spec{Name: "x", Log: zerolog.Nop(), Worker: pyworker.Config{Log: zerolog.Nop(), Env: []string{"A=1"},
		SysProcAttr: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1, Groups: []uint32{2}}}}}
	b := a
	b.Log, b.Worker.Log = zerolog.New(nil), zerolog.New(nil)
	b.Worker.Env = []string{"A=1"}
	b.Worker.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1, Groups: []uint32{2}}}
	if !a.SameSettings(b) {
		t.Error("equal settings in other values compare different")
	}
	b.Worker.SysProcAttr.Credential.Groups = []uint32{3}
	if a.SameSettings(b) {
		t.Error("supplementary groups are not compared")
	}
}

// setNonZero sets v to a value other than its zero one.
func setNonZero(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		if !setNonZero(s.Index(0)) {
			return false
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if !setNonZero(p.Elem()) {
			return false
		}
		v.Set(p)
	default:
		return false
	}
	return true
}
