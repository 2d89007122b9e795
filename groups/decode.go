package groups

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// fileDecoder fills raw* structs from one file's parsed TOML tree. Unlike
// toml.Decode it does not stop at the first problem: every unknown key and
// every type mismatch becomes an error, located with the scanned positions.
type fileDecoder struct {
	file  string
	pos   map[string]int
	errs  []error
	lines []int // line of each error in errs, to report in file order
}

func (d *fileDecoder) add(line int, err error) {
	d.errs = append(d.errs, err)
	d.lines = append(d.lines, line)
}

// sorted returns the errors in line order (stable: same line keeps order).
func (d *fileDecoder) sorted() []error {
	idx := make([]int, len(d.errs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return d.lines[idx[a]] < d.lines[idx[b]] })
	out := make([]error, len(idx))
	for i, j := range idx {
		out[i] = d.errs[j]
	}
	return out
}

// line is the line of path, or of its nearest ancestor the scanner saw.
func (d *fileDecoder) line(path []string) int {
	for n := len(path); n > 0; n-- {
		if l, ok := d.pos[keyID(path[:n])]; ok {
			return l
		}
	}
	return 0
}

// where is "FILE:LINE" for path ("FILE" when the line is unknown).
func (d *fileDecoder) where(path []string) string {
	if l := d.line(path); l > 0 {
		return d.file + ":" + strconv.Itoa(l)
	}
	return d.file
}

// failf records "FILE:LINE: key: message".
func (d *fileDecoder) failf(path []string, format string, args ...any) {
	d.add(d.line(path), fmt.Errorf("%s: %s: %s", d.where(path), displayKey(path), fmt.Sprintf(format, args...)))
}

// displayKey spells a key path as a user reads it: daemon.site1.threads,
// script-alias[1].url, listen[0] (indexes 0-based), daemon."bob:1".user.
func displayKey(path []string) string {
	var b strings.Builder
	for i, c := range path {
		if _, err := strconv.Atoi(c); err == nil && i > 0 && path[i-1] != "daemon" {
			b.WriteString("[" + c + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		if c != "" && strings.IndexFunc(c, func(r rune) bool { return r > 0x7f || !isBareKeyByte(byte(r)) }) < 0 {
			b.WriteString(c)
		} else {
			b.WriteString(strconv.Quote(c))
		}
	}
	return b.String()
}

// decodeStruct fills the struct rv from table m.
func (d *fileDecoder) decodeStruct(m map[string]any, rv reflect.Value, path []string) {
	fields := make(map[string][]int)
	collectFields(rv.Type(), nil, fields)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { // report in file order
		li, lj := d.line(with(path, keys[i])), d.line(with(path, keys[j]))
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		kp := with(path, k)
		idx, ok := fields[k]
		if !ok {
			// Unknown keys are "FILE: key: unknown key": the key path says where.
			d.add(d.line(kp), fmt.Errorf("%s: %s: unknown key", d.file, displayKey(kp)))
			continue
		}
		d.decodeValue(m[k], rv.FieldByIndex(idx), kp)
	}
}

// collectFields maps toml tags to field indexes, flattening embedded structs.
func collectFields(t reflect.Type, prefix []int, out map[string][]int) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		idx := append(append([]int(nil), prefix...), i)
		if f.Anonymous {
			collectFields(f.Type, idx, out)
			continue
		}
		if tag := f.Tag.Get("toml"); tag != "" {
			out[tag] = idx
		}
	}
}

func (d *fileDecoder) decodeValue(v any, fv reflect.Value, path []string) {
	t := fv.Type()
	switch {
	case t == reflect.TypeFor[*string]():
		if s, ok := v.(string); ok {
			fv.Set(reflect.ValueOf(&s))
			return
		}
		d.typeError(path, "a string", v)
	case t == reflect.TypeFor[*bool]():
		if b, ok := v.(bool); ok {
			fv.Set(reflect.ValueOf(&b))
			return
		}
		d.typeError(path, "a boolean", v)
	case t == reflect.TypeFor[*int64]():
		if n, ok := v.(int64); ok {
			fv.Set(reflect.ValueOf(&n))
			return
		}
		d.typeError(path, "an integer", v)
	case t == reflect.TypeFor[*[]string]():
		arr, ok := v.([]any)
		if !ok {
			d.typeError(path, "an array of strings", v)
			return
		}
		out := make([]string, 0, len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				d.typeError(with(path, strconv.Itoa(i)), "a string", e)
				return
			}
			out = append(out, s)
		}
		fv.Set(reflect.ValueOf(&out))
	case t == reflect.TypeFor[map[string]string]():
		m, ok := v.(map[string]any)
		if !ok {
			d.typeError(path, "a table of strings", v)
			return
		}
		out := make(map[string]string, len(m))
		for k, e := range m {
			s, ok := e.(string)
			if !ok {
				d.typeError(with(path, k), "a string", e)
				continue
			}
			out[k] = s
		}
		fv.Set(reflect.ValueOf(out))
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.typeError(path, "a table", v)
			return
		}
		if fv.IsNil() {
			fv.Set(reflect.New(t.Elem()))
		}
		d.decodeStruct(m, fv.Elem(), path)
	case t.Kind() == reflect.Map: // map[string]*rawX
		m, ok := v.(map[string]any)
		if !ok {
			d.typeError(path, "a table", v)
			return
		}
		if fv.IsNil() {
			fv.Set(reflect.MakeMap(t))
		}
		for k, e := range m {
			ev := reflect.New(t.Elem()).Elem()
			d.decodeValue(e, ev, with(path, k))
			if !ev.IsNil() {
				fv.SetMapIndex(reflect.ValueOf(k), ev)
			}
		}
	case t.Kind() == reflect.Slice: // []*rawX: [[array]] or an inline array of tables
		var elems []map[string]any
		switch a := v.(type) {
		case []map[string]any:
			elems = a
		case []any:
			for i, e := range a {
				m, ok := e.(map[string]any)
				if !ok {
					d.typeError(with(path, strconv.Itoa(i)), "a table", e)
					return
				}
				elems = append(elems, m)
			}
		default:
			d.typeError(path, "an array of tables", v)
			return
		}
		for i, m := range elems {
			ev := reflect.New(t.Elem().Elem())
			d.decodeStruct(m, ev.Elem(), with(path, strconv.Itoa(i)))
			fv.Set(reflect.Append(fv, ev))
		}
	default:
		panic("groups: unsupported raw field type " + t.String())
	}
}

func (d *fileDecoder) typeError(path []string, want string, got any) {
	d.failf(path, "must be %s, not %s", want, tomlType(got))
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a datetime"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// with returns path+key in a new slice (paths are kept in messages and maps).
func with(path []string, key ...string) []string {
	return append(append(make([]string, 0, len(path)+len(key)), path...), key...)
}
