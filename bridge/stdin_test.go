package bridge

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// Bytes come out in order through memory, spool, drain and spool again;
// a drained spool file is reused, not recreated.
func TestStdinPipeSpoolReuse(t *testing.T) {
	p := newStdinPipe(newStdinMemory(64, 0), t.TempDir())
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

// Beyond stdinSmall, a request's memory comes from the server's budget:
// with the budget spent, another request keeps stdinSmall bytes in memory
// and spools the rest, in order; a closed request gives its buffer back.
func TestStdinMemoryBudget(t *testing.T) {
	mem := newStdinMemory(256<<10, 256<<10+maxContent) // one large buffer
	a, b := newStdinPipe(mem, t.TempDir()), newStdinPipe(mem, t.TempDir())
	var want bytes.Buffer
	for i := range 16 {
		rec := bytes.Repeat([]byte{byte(i)}, 16<<10)
		want.Write(rec)
		a.write(rec)
		b.write(rec)
	}
	if !a.big || a.spooled() != 0 {
		t.Errorf("first request: large buffer %v, %d bytes spooled; want all in memory", a.big, a.spooled())
	}
	if b.big || b.spooled() == 0 || b.bufCap() > stdinSmall+maxContent {
		t.Errorf("second request over budget: large buffer %v, %d bytes spooled, buffer %d bytes",
			b.big, b.spooled(), b.bufCap())
	}
	for _, p := range []*stdinPipe{a, b} {
		p.finish()
		got, err := io.ReadAll(p)
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("read %d bytes (%v), want the %d written", len(got), err, want.Len())
		}
		p.close()
	}
	if left := mem.left.Load(); left != 1 {
		t.Fatalf("budget has %d buffers after both closed, want 1", left)
	}
	c := newStdinPipe(mem, t.TempDir())
	c.write(make([]byte, 200<<10))
	if !c.big {
		t.Error("a buffer given back was not taken again")
	}
	c.close()
}

// A request whose connection is lent gives its large buffer back to the
// budget for as long as the worker reads the body itself.
func TestStdinMemoryFreedWhileLent(t *testing.T) {
	mem := newStdinMemory(256<<10, 256<<10+maxContent) // one large buffer
	p := newStdinPipe(mem, t.TempDir())
	p.write(make([]byte, 200<<10))
	if !p.big || mem.left.Load() != 0 {
		t.Fatalf("large buffer %v, %d left in the budget", p.big, mem.left.Load())
	}
	if _, err := io.ReadFull(p, make([]byte, 200<<10)); err != nil {
		t.Fatal(err)
	}
	p.WantLoan()
	repaid := make(chan []byte)
	go func() {
		left, _ := p.lend(&Loan{FD: -1})
		repaid <- left
	}()
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, ErrLent) {
		t.Fatalf("read while lent: %v, want ErrLent", err)
	}
	if p.TakeLoan() == nil {
		t.Fatal("no loan to take")
	}
	if left := mem.left.Load(); left != 1 {
		t.Errorf("budget has %d buffers while lent, want 1", left)
	}
	p.Repay([]byte("back"), false, false)
	if left := <-repaid; string(left) != "back" {
		t.Errorf("lend returned %q", left)
	}
	p.write(make([]byte, 200<<10)) // the body goes on through the pipe
	if !p.big {
		t.Error("no large buffer taken again after the loan")
	}
	p.close()
}
