package groups

import "reflect"

// overlay copies every key set in src (a non-nil pointer, slice or map
// field) over dst; maps merge by key and embedded structs recurse. dst and
// src are pointers to the same raw* struct type. Files of the server context
// and the [embedded] tables of several files combine this way: later files
// override earlier ones key by key.
func overlay(dst, src any) {
	overlayValue(reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem())
}

func overlayValue(dst, src reflect.Value) {
	for i := 0; i < src.NumField(); i++ {
		d, s := dst.Field(i), src.Field(i)
		switch s.Kind() {
		case reflect.Struct:
			overlayValue(d, s)
		case reflect.Map:
			if s.Len() == 0 {
				continue
			}
			if d.IsNil() {
				d.Set(reflect.MakeMap(s.Type()))
			}
			for it := s.MapRange(); it.Next(); {
				d.SetMapIndex(it.Key(), it.Value())
			}
		case reflect.Pointer, reflect.Slice:
			if !s.IsNil() {
				d.Set(s)
			}
		}
	}
}
