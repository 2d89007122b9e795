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

// NewSplicer is nil: only Linux splices.
func NewSplicer(w io.Writer) *Splicer { return nil }

// Move is never called: NewSplicer gives no Splicer.
func (s *Splicer) Move(src uintptr, n int) (int, error) { return 0, os.ErrInvalid }

// Pipe is refused: only Linux splices.
func Pipe(size int) (r, w uintptr, err error) { return 0, 0, os.ErrInvalid }

// WriteNow is never called where nothing splices.
func WriteNow(fd uintptr, p []byte) (int, error) { return 0, os.ErrInvalid }

// Close is never called where nothing splices.
func Close(fd uintptr) {}

// ReadNow is never called where nothing splices.
func ReadNow(fd uintptr, p []byte) (int, error) { return 0, os.ErrInvalid }

// SpliceNow is never called where nothing splices.
func SpliceNow(src, dst uintptr, n int) (int, error) { return 0, os.ErrInvalid }
