package web

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// hub fans the streams' events out to the pages following /events. A slow
// page loses ticks, never blocks the others: each tick only says "reload
// your content", so one pending tick per page is enough.
type hub struct {
	mu   sync.Mutex
	subs map[chan string]struct{}
	done chan struct{}
	once sync.Once
}

func newHub() *hub { return &hub{subs: map[chan string]struct{}{}, done: make(chan struct{})} }

// Shutdown ends every live feed, so that a graceful shutdown of the HTTP
// server does not wait for them.
func (s *Server) Shutdown() { s.live.once.Do(func() { close(s.live.done) }) }

func (h *hub) subscribe() chan string {
	ch := make(chan string, 1)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *hub) unsubscribe(ch chan string) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *hub) publish(subject string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- subject:
		default:
		}
	}
}

// events is GET /events: server-sent events, one "change" per event on the
// streams (its subject as data), a comment every 20 s to keep proxies from
// closing the connection.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ch := s.live.subscribe()
	defer s.live.unsubscribe(ch)
	_, _ = fmt.Fprint(w, "retry: 3000\n: connected\n\n")
	_ = rc.Flush()
	keep := time.NewTicker(20 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.live.done:
			return
		case subj := <-ch:
			_, err := fmt.Fprintf(w, "event: change\ndata: %s\n\n", strings.ReplaceAll(subj, "\n", ""))
			if err != nil || rc.Flush() != nil {
				return
			}
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}
