package inventory

import (
	"crypto/x509"
	"slices"
	"strings"
	"sync"

	"github.com/stateguard/stateguard/pkg/events"
)

// Record is one Secret key or file.
type Record struct {
	Source events.CertificateSource
	// Chain is the parsed chain, leaf first; empty when Err is set.
	Chain []*x509.Certificate
	// Err says why the data could not be read. It never quotes the data.
	Err error
}

// ID is the record's identity within the store.
func (r Record) ID() string { return sourceID(r.Source) }

func sourceID(s events.CertificateSource) string {
	if s.Path != "" {
		return "file\x00" + s.Path
	}
	return "secret\x00" + s.Namespace + "\x00" + s.Secret + "\x00" + s.Key
}

func ownerID(s events.CertificateSource) string {
	if s.Path != "" {
		return "file\x00" + s.Path
	}
	return "secret\x00" + s.Namespace + "\x00" + s.Secret
}

// Store holds records, grouped by owner (a Secret or a file).
type Store struct {
	mu      sync.RWMutex
	owners  map[string][]Record
	n       int
	changed func([]Record)
}

// New returns an empty store. changed, if not nil, is called (outside the
// lock) with the records of an owner each time they are replaced.
func New(changed func([]Record)) *Store {
	return &Store{owners: map[string][]Record{}, changed: changed}
}

// ReplaceSecret sets the records of one Secret; none deletes it.
func (s *Store) ReplaceSecret(namespace, name string, recs []Record) {
	s.replace(ownerID(events.CertificateSource{Namespace: namespace, Secret: name}), recs)
}

// ReplaceFile sets the records of one file; none deletes it.
func (s *Store) ReplaceFile(path string, recs []Record) {
	s.replace(ownerID(events.CertificateSource{Path: path}), recs)
}

func (s *Store) replace(owner string, recs []Record) {
	s.mu.Lock()
	s.n += len(recs) - len(s.owners[owner])
	if len(recs) == 0 {
		delete(s.owners, owner)
	} else {
		s.owners[owner] = recs
	}
	s.mu.Unlock()
	if s.changed != nil && len(recs) > 0 {
		s.changed(recs)
	}
}

// Secret returns the records of one Secret.
func (s *Store) Secret(namespace, name string) []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.owners[ownerID(events.CertificateSource{Namespace: namespace, Secret: name})])
}

// Files returns the paths of the files in the store.
func (s *Store) Files() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for id, recs := range s.owners {
		if strings.HasPrefix(id, "file\x00") {
			out = append(out, recs[0].Source.Path)
		}
	}
	return out
}

// All returns every record, sorted by owner (files first, then Secrets by
// namespace and name) and, within an owner, in the order they were given.
func (s *Store) All() []Record {
	s.mu.RLock()
	ids := make([]string, 0, len(s.owners))
	for id := range s.owners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Record, 0, s.n)
	for _, id := range ids {
		out = append(out, s.owners[id]...)
	}
	s.mu.RUnlock()
	return out
}

// Len returns the number of records.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}
