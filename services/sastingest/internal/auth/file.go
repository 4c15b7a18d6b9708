package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// reloading holds the parsed content of a file and parses it again when the
// file's modification time, size or inode changes. It looks at the file at
// most once per interval.
type reloading[T any] struct {
	path     string
	parse    func(lines []line) (T, error)
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	value   T
	stamp   string
	checked time.Time
	err     error
}

type line struct {
	no     int
	fields []string
}

func newReloading[T any](path string, parse func([]line) (T, error)) (*reloading[T], error) {
	r := &reloading[T]{path: path, parse: parse, interval: time.Second, now: time.Now}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

// get returns the current value. When a changed file does not parse, the
// previous value stays in force and the error is returned with it.
func (r *reloading[T]) get() (T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if d := now.Sub(r.checked); !r.checked.IsZero() && d >= 0 && d < r.interval {
		return r.value, r.err
	}
	r.checked = now
	fi, err := os.Stat(r.path)
	if err != nil {
		r.err = fmt.Errorf("%s: %w", r.path, err)
		return r.value, r.err
	}
	stamp := fmt.Sprintf("%d/%d/%v", fi.Size(), fi.ModTime().UnixNano(), inode(fi))
	if stamp == r.stamp {
		return r.value, r.err
	}
	data, err := os.ReadFile(r.path)
	if err != nil {
		r.err = fmt.Errorf("%s: %w", r.path, err)
		return r.value, r.err
	}
	v, err := r.parse(splitLines(data))
	if err != nil {
		r.err = fmt.Errorf("%s: %w", r.path, err)
		return r.value, r.err
	}
	r.value, r.stamp, r.err = v, stamp, nil
	return v, nil
}

// splitLines drops comments (from #) and blank lines.
func splitLines(data []byte) []line {
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		s := sc.Text()
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = s[:i]
		}
		if f := strings.Fields(s); len(f) > 0 {
			out = append(out, line{no: n, fields: f})
		}
	}
	return out
}
