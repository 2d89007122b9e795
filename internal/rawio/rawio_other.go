//go:build !linux

package rawio

import (
	"io"
	"os"
)

// NewReader is r: only Linux reads directly.
func NewReader(r io.Reader) io.Reader { return r }

// NewWriter writes w with the standard library's calls.
func NewWriter(w io.Writer) Writer { return &plainWriter{w: w} }

// Stat is os.Stat for routing.
func Stat(path string) (Info, error) { return info(os.Stat(path)) }

// Lstat is os.Lstat for routing.
func Lstat(path string) (Info, error) { return info(os.Lstat(path)) }

func info(fi os.FileInfo, err error) (Info, error) {
	if err != nil {
		return Info{}, err
	}
	return Info{Mode: fi.Mode().Type(), Mtime: fi.ModTime().UnixNano()}, nil
}
