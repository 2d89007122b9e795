package pyworker

import (
	"bufio"
	"io"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// tailLines keeps the last lines of the worker's stderr for error messages.
type tailLines struct {
	mu    sync.Mutex
	lines []string
}

const tailMax = 20

func (t *tailLines) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailMax {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailMax-1]
	}
	t.lines = append(t.lines, s)
}

func (t *tailLines) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// logLines logs each line read from r until EOF; with t set, lines are also
// kept in t. Over-long lines are logged in pieces.
func logLines(r io.Reader, log zerolog.Logger, level zerolog.Level, stream string, t *tailLines) {
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			s := strings.TrimRight(string(line), "\r\n")
			if t != nil {
				t.add(s)
			}
			log.WithLevel(level).Str("stream", stream).Msg(s)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}
