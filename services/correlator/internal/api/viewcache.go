package api

import (
	"context"
	"runtime"
	"slices"
	"sync"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// Revisions is what a Store may add so that the API keeps the views it
// derived: the namespaces with state and the revision of each one's stored
// state, which changes with every write of it.
type Revisions interface {
	Revisions(ctx context.Context) (map[string]uint64, error)
}

// viewCache keeps each namespace's derived view with the revision of the
// state it was derived from: GET /v1/apps (and the incident and
// certificate lists) derive only the namespaces written since the last
// call, instead of every one on every call (3.6 s at 10,000 apps).
type viewCache struct {
	mu    sync.Mutex
	views map[string]cachedView
}

type cachedView struct {
	rev uint64
	v   model.View
}

// views returns the view of every namespace with state, in namespace
// order: from the cache when the store tells revisions and the namespace's
// did not change, derived (a few namespaces at once) otherwise.
func (s *Server) views(ctx context.Context) ([]model.View, error) {
	revs, ok := s.store.(Revisions)
	if !ok {
		return s.deriveAll(ctx)
	}
	byNS, err := revs.Revisions(ctx)
	if err != nil {
		return nil, err
	}
	nss := make([]string, 0, len(byNS))
	for ns := range byNS {
		nss = append(nss, ns)
	}
	slices.Sort(nss)
	out := make([]model.View, len(nss))
	have := make([]bool, len(nss))
	var stale []int
	s.cache.mu.Lock()
	if s.cache.views == nil {
		s.cache.views = map[string]cachedView{}
	}
	for i, ns := range nss {
		if c, ok := s.cache.views[ns]; ok && c.rev == byNS[ns] {
			out[i], have[i] = c.v, true
		} else {
			stale = append(stale, i)
		}
	}
	for ns := range s.cache.views {
		if _, ok := byNS[ns]; !ok {
			delete(s.cache.views, ns)
		}
	}
	s.cache.mu.Unlock()
	if err := s.deriveInto(ctx, nss, stale, byNS, out, have); err != nil {
		return nil, err
	}
	views := out[:0]
	for i := range out {
		if have[i] {
			views = append(views, out[i])
		}
	}
	return views, nil
}

// deriveInto derives the views of the namespaces nss[i] for i in idx into
// out, GOMAXPROCS at a time, and caches them under the revision listed (a
// state read newer than it is derived again next time: never a stale view).
func (s *Server) deriveInto(ctx context.Context, nss []string, idx []int, revs map[string]uint64, out []model.View, have []bool) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range min(len(idx), runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				st, ok, err := s.store.State(ctx, nss[i])
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				if !ok {
					continue
				}
				out[i], have[i] = model.Derive(s.store.Rules(), st), true
				s.cache.mu.Lock()
				s.cache.views[nss[i]] = cachedView{rev: revs[nss[i]], v: out[i]}
				s.cache.mu.Unlock()
			}
		})
	}
	for _, i := range idx {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// deriveAll derives every namespace, for a Store that tells no revisions.
func (s *Server) deriveAll(ctx context.Context) ([]model.View, error) {
	nss, err := s.store.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	slices.Sort(nss)
	var out []model.View
	for _, ns := range nss {
		st, ok, err := s.store.State(ctx, ns)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, model.Derive(s.store.Rules(), st))
		}
	}
	return out, nil
}
