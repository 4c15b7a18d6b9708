package kubetest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// HoldProxy stands between a process under test and the API server: it
// forwards every request with the Env's credentials and can hold the first
// request that matches a rule, before or after the API server has acted on
// it. A test holds a chosen write, kills the process while the write is
// held, and so crashes it at a known point instead of after a guessed
// sleep. The process reaches it over plain HTTP on loopback (its
// kubeconfig: Kubeconfig).
type HoldProxy struct {
	URL   string
	mu    sync.Mutex
	holds []*Held
	seen  []func(*http.Request)
}

// Observe calls f with every request that comes in, before any hold.
func (p *HoldProxy) Observe(f func(*http.Request)) {
	p.mu.Lock()
	p.seen = append(p.seen, f)
	p.mu.Unlock()
}

// Held is one rule of a HoldProxy. Arrived is closed when the first
// matching request is held; Release lets it (and any later match) go.
type Held struct {
	match   func(*http.Request) bool
	after   bool
	Arrived chan struct{}
	release chan struct{}
	once    sync.Once
	relOnce sync.Once
	taken   bool
}

// Release lets the held request go on (its answer reaches a client that is
// still there).
func (h *Held) Release() { h.relOnce.Do(func() { close(h.release) }) }

// StartHoldProxy starts a proxy to e's API server, stopped with the test.
func StartHoldProxy(tb testing.TB, e *Env) *HoldProxy {
	tb.Helper()
	target, err := url.Parse(e.Config.Host)
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := rest.TransportFor(e.Config)
	if err != nil {
		tb.Fatal(err)
	}
	p := &HoldProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
		Transport:     rt,
		FlushInterval: -1, // watches stream through
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A client killed while held, or gone mid-watch, is what the
			// tests do on purpose: no log line for it.
			if !errors.Is(err, errClientGone) && r.Context().Err() == nil {
				tb.Logf("kubetest: proxy %s %s: %v", r.Method, r.URL.Path, err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
		ModifyResponse: func(resp *http.Response) error {
			if h := p.take(resp.Request, true); h != nil {
				return h.wait(resp.Request)
			}
			return nil
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		seen := slices.Clone(p.seen)
		p.mu.Unlock()
		for _, f := range seen {
			f(r)
		}
		if h := p.take(r, false); h != nil {
			if err := h.wait(r); err != nil {
				return // the client went away while held: the request never reaches the API server
			}
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(func() {
		p.mu.Lock()
		for _, h := range p.holds {
			h.Release()
		}
		p.mu.Unlock()
		srv.CloseClientConnections()
		srv.Close()
	})
	p.URL = srv.URL
	return p
}

// Hold holds the first request match selects: before it is forwarded
// (afterForward false: the API server never sees it while held) or after
// the API server answered (afterForward true: the change is made, the
// client does not know).
func (p *HoldProxy) Hold(match func(*http.Request) bool, afterForward bool) *Held {
	h := &Held{match: match, after: afterForward, Arrived: make(chan struct{}), release: make(chan struct{})}
	p.mu.Lock()
	p.holds = append(p.holds, h)
	p.mu.Unlock()
	return h
}

func (p *HoldProxy) take(r *http.Request, after bool) *Held {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.holds {
		if h.after == after && !h.taken && h.match(r) {
			h.taken = true
			return h
		}
	}
	return nil
}

var errClientGone = errors.New("kubetest: the client went away while its request was held")

func (h *Held) wait(r *http.Request) error {
	h.once.Do(func() { close(h.Arrived) })
	select {
	case <-h.release:
		return nil
	case <-r.Context().Done():
		return errClientGone
	}
}

// Kubeconfig writes a kubeconfig that reaches the API server through the
// proxy and returns its path.
func (p *HoldProxy) Kubeconfig(tb testing.TB) string {
	tb.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.URL}
	cfg.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	cfg.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	cfg.CurrentContext = "proxy"
	path := filepath.Join(tb.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
