package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions configure the streams EnsureStreams creates.
type StreamOptions struct {
	// Replicas per stream: 1 for a single server, 3 in a cluster.
	Replicas int
	// Duplicates is the de-duplication window (default 2m).
	Duplicates time.Duration
	// MaxAge bounds how long events are kept (default 30 days; 0 keeps that).
	MaxAge time.Duration
	// Names limits EnsureStreams to these streams (empty: all of them): a
	// service that binds checks only the streams it uses (StreamsOf).
	Names []string
}

// StreamConfigs returns the configuration of every stream.
func StreamConfigs(o StreamOptions) []jetstream.StreamConfig {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Duplicates <= 0 {
		o.Duplicates = 2 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * 24 * time.Hour
	}
	names := []string{StreamSARIF, StreamCertificate, StreamSnapshot, StreamDecision, StreamDeadLetter}
	cfgs := make([]jetstream.StreamConfig, 0, len(names))
	for _, n := range names {
		cfgs = append(cfgs, jetstream.StreamConfig{
			Name:        n,
			Description: "stateguard " + n + " events",
			Subjects:    StreamSubjects[n],
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    o.Replicas,
			Duplicates:  o.Duplicates,
			MaxAge:      o.MaxAge,
			Discard:     jetstream.DiscardOld,
			// PublishBatch and Batcher store many events with one disk
			// sync (nats-server 2.12+).
			AllowAtomicPublish: true,
		})
	}
	return cfgs
}

// EnsureStreams creates the streams or updates them to the wanted
// configuration. Safe to call from every service at every start.
func (c *Client) EnsureStreams(ctx context.Context, o StreamOptions) error {
	var errs []error
	for _, cfg := range StreamConfigs(o) {
		if len(o.Names) > 0 && !slices.Contains(o.Names, cfg.Name) {
			continue
		}
		if _, err := c.js.CreateOrUpdateStream(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}

// StreamsOf lists the streams a service uses, from the catalogue: those of
// the events it produces or consumes, and DEADLETTER when it consumes
// anything (its consumers dead-letter there).
func StreamsOf(service string) []string {
	var names []string
	consumes := false
	for _, s := range Catalogue {
		c := slices.Contains(s.Consumers, service)
		consumes = consumes || c
		if (c || s.Producer == service) && !slices.Contains(names, s.Stream()) {
			names = append(names, s.Stream())
		}
	}
	if consumes {
		names = append(names, StreamDeadLetter)
	}
	slices.Sort(names)
	return names
}
