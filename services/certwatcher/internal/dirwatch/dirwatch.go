package dirwatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

// MaxFileSize bounds the files read; larger files are not certificates.
const MaxFileSize = 1 << 20

// Watcher watches directories.
type Watcher struct {
	Dirs   []string
	Store  *inventory.Store
	Log    *slog.Logger
	Rescan time.Duration // 0: notifications only
}

// Scan reads every file under the directories once and drops files that
// disappeared.
func (w *Watcher) Scan() error {
	seen := map[string]bool{}
	var errs []error
	for _, dir := range w.Dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() != "." && len(d.Name()) > 1 && d.Name()[0] == '.' && p != dir {
				return filepath.SkipDir // kubelet's ..data dirs are reached through their symlinks
			}
			if !d.IsDir() {
				seen[p] = true
				w.readFile(p)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("scan %s: %w", dir, err))
		}
	}
	for _, p := range w.Store.Files() {
		if !seen[p] {
			w.Store.ReplaceFile(p, nil)
		}
	}
	return errors.Join(errs...)
}

// readFile records p when it holds certificates, or a finding when it
// looks like one but cannot be read.
func (w *Watcher) readFile(p string) {
	st, err := os.Stat(p)
	if err != nil || st.IsDir() {
		w.Store.ReplaceFile(p, nil)
		return
	}
	if st.Size() > MaxFileSize {
		return
	}
	data, err := os.ReadFile(p)
	if err != nil {
		w.Store.ReplaceFile(p, nil)
		return
	}
	ext := filepath.Ext(p)
	certLike := ext == ".crt" || ext == ".pem" || ext == ".cert" || ext == ".cer"
	if !certinfo.HasCertificateBlock(data) && !certLike {
		w.Store.ReplaceFile(p, nil)
		return
	}
	rec := inventory.Record{Source: events.CertificateSource{Path: p}}
	chain, err := certinfo.Parse(data)
	switch {
	case errors.Is(err, certinfo.ErrPrivateKey) && !certinfo.HasCertificateBlock(data):
		w.Store.ReplaceFile(p, nil) // a key file named .pem
		return
	case err != nil:
		rec.Err = err
		w.Log.Warn("unreadable certificate", "path", p, "reason", err.Error())
	default:
		rec.Chain = chain.Certs
	}
	w.Store.ReplaceFile(p, []inventory.Record{rec})
}

// Run scans, then follows notifications until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("fsnotify: %w", err)
	}
	defer fw.Close()
	for _, dir := range w.Dirs {
		if err := addTree(fw, dir); err != nil {
			return err
		}
	}
	if err := w.Scan(); err != nil {
		w.Log.Warn("watch-dir scan", "error", err)
	}
	var tick <-chan time.Time
	if w.Rescan > 0 {
		t := time.NewTicker(w.Rescan)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if err := w.Scan(); err != nil {
				w.Log.Warn("watch-dir rescan", "error", err)
			}
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			w.handle(fw, ev)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.Log.Warn("watch-dir notification error; rescanning", "error", err)
			if err := w.Scan(); err != nil {
				w.Log.Warn("watch-dir rescan", "error", err)
			}
		}
	}
}

func (w *Watcher) handle(fw *fsnotify.Watcher, ev fsnotify.Event) {
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// A removed directory or file; kubelet's symlink swap shows up here
		// too, so look again at everything.
		if err := w.Scan(); err != nil {
			w.Log.Warn("watch-dir rescan", "error", err)
		}
		return
	}
	st, err := os.Stat(ev.Name)
	if err != nil {
		return
	}
	if st.IsDir() {
		if err := addTree(fw, ev.Name); err != nil {
			w.Log.Warn("watch new directory", "path", ev.Name, "error", err)
		}
		if err := w.Scan(); err != nil {
			w.Log.Warn("watch-dir rescan", "error", err)
		}
		return
	}
	w.readFile(ev.Name)
}

func addTree(fw *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		if d.IsDir() {
			if err := fw.Add(p); err != nil {
				return fmt.Errorf("watch %s: %w", p, err)
			}
		}
		return nil
	})
}
