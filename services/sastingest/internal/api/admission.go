package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// admit bounds the uploads in progress and the time their bodies may take
// to arrive. Past MaxConcurrent uploads, one more is answered 429 with
// Retry-After at once, before its body is read, so a flood of uploads
// costs neither CPU nor disk and the health endpoints (which are not
// admitted here) keep answering. An admitted upload's body must be read
// within BodyReadTimeout: a client that trickles a body is cut off.
func (s *Server) admit(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			s.done(endpoint, time.Now(), outcomeBusy)
			writeProblem(w, r, Problem{Type: ProblemBase + "busy", Title: "Too many uploads in progress", Status: http.StatusTooManyRequests,
				Detail: fmt.Sprintf("%d uploads are in progress, the limit; retry later", cap(s.slots))})
			return
		}
		if s.opts.BodyReadTimeout > 0 {
			if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.opts.BodyReadTimeout)); err != nil {
				s.opts.Log.WarnContext(r.Context(), "body read deadline not set", "endpoint", endpoint, "error", err)
			}
		}
		h(w, r)
	}
}

// acquire waits for an upload slot for background work (GitHub-style
// uploads), which shares the bound with requests.
func (s *Server) acquire(ctx context.Context) (release func(), err error) {
	select {
	case s.slots <- struct{}{}:
		return func() { <-s.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// errBodyTimeout is a body that did not arrive within BodyReadTimeout.
var errBodyTimeout = errors.New("the request body was not received in time")

// isDeadline reports whether a body read failed on its read deadline.
func isDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
