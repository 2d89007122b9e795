package bridge

import (
	"bytes"
	"io"
	"testing"
)

// Bytes come out in order through memory, spool, drain and spool again;
// a drained spool file is reused, not recreated.
func TestStdinPipeSpoolReuse(t *testing.T) {
	p := newStdinPipe(64, t.TempDir())
	var want, got bytes.Buffer
	put := func(n int, c byte) {
		b := bytes.Repeat([]byte{c}, n)
		want.Write(b)
		p.write(b)
	}
	take := func(n int) {
		b := make([]byte, n)
		for n > 0 {
			k, err := p.Read(b[:n])
			if err != nil {
				t.Fatal(err)
			}
			got.Write(b[:k])
			n -= k
		}
	}
	put(60, 'a')
	put(100, 'b') // over the limit: spooled after the memory bytes
	if p.file == nil || p.spooled() != 100 {
		t.Fatalf("not spooled: file %v, %d bytes", p.file, p.spooled())
	}
	file := p.file
	take(160) // drains memory, then the file
	if p.spooled() != 0 {
		t.Fatalf("%d bytes left in the spool", p.spooled())
	}
	put(10, 'c') // memory again: the file is empty
	put(70, 'd') // spooled again, into the same file from its start
	if p.file != file || p.fw != 70 {
		t.Fatalf("spool file not reused from its start: same %v, fw %d", p.file == file, p.fw)
	}
	p.finish()
	rest, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	got.Write(rest)
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("got %q\nwant %q", got.Bytes(), want.Bytes())
	}
	p.close()
	if p.file != nil {
		t.Fatal("spool file kept after close")
	}
}
