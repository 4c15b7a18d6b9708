package events

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotBootstrapped says a stream, consumer or bucket a service binds to
// does not exist, or differs from what the service needs: the bootstrap
// step (each service's `bootstrap` subcommand, run with the admin user)
// creates and updates them.
var ErrNotBootstrapped = errors.New("missing, different or not allowed to this NATS user: the bootstrap subcommand creates it (as the admin user) and auth.conf grants it")

// WithBind makes the client bind to existing streams, consumers, KV buckets
// and object stores instead of creating or updating them: for a NATS user
// that may only use them (deploy/kustomize/base/nats/auth.conf). Every
// create-or-update through JetStream() and Consume becomes a look-up, and
// a missing asset an error wrapping ErrNotBootstrapped.
func WithBind() Option {
	return func(o *options) error { o.bind = true; return nil }
}

// Binding reports whether the client binds instead of creating (WithBind).
func (c *Client) Binding() bool {
	_, ok := c.js.(bindingJetStream)
	return ok
}

// bindingJetStream turns the create and update calls of a JetStream into
// look-ups of what exists, so that the services' code paths stay the same
// whether they manage their assets (no auth, `make run`, tests) or only
// bind to those the bootstrap created.
type bindingJetStream struct{ jetstream.JetStream }

func notBootstrapped(kind, name string, err error) error {
	return fmt.Errorf("%s %s: %w: %w", kind, name, ErrNotBootstrapped, err)
}

func (b bindingJetStream) bindStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := b.Stream(ctx, cfg.Name)
	if err != nil {
		return nil, notBootstrapped("stream", cfg.Name, err)
	}
	got := s.CachedInfo().Config
	if !slices.Equal(got.Subjects, cfg.Subjects) && len(cfg.Subjects) > 0 {
		return nil, notBootstrapped("stream", cfg.Name, fmt.Errorf("subjects %v, want %v", got.Subjects, cfg.Subjects))
	}
	if cfg.AllowAtomicPublish && !got.AllowAtomicPublish {
		return nil, notBootstrapped("stream", cfg.Name, errors.New("atomic publish not allowed"))
	}
	return s, nil
}

func (b bindingJetStream) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return b.bindStream(ctx, cfg)
}

func (b bindingJetStream) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return b.bindStream(ctx, cfg)
}

func (b bindingJetStream) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return b.bindStream(ctx, cfg)
}

// bindConsumer binds to a durable consumer and checks that it reads the
// subjects wanted: a consumer with other filters would hand the service
// other events, or none.
func (b bindingJetStream) bindConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	name := cfg.Durable
	if name == "" {
		name = cfg.Name
	}
	cons, err := b.Consumer(ctx, stream, name)
	if err != nil {
		return nil, notBootstrapped("consumer", stream+"/"+name, err)
	}
	got := cons.CachedInfo().Config
	if !slices.Equal(filters(got), filters(cfg)) {
		return nil, notBootstrapped("consumer", stream+"/"+name, fmt.Errorf("filters %v, want %v", filters(got), filters(cfg)))
	}
	return cons, nil
}

func filters(cfg jetstream.ConsumerConfig) []string {
	f := slices.Clone(cfg.FilterSubjects)
	if cfg.FilterSubject != "" {
		f = append(f, cfg.FilterSubject)
	}
	slices.Sort(f)
	return f
}

func (b bindingJetStream) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return b.bindConsumer(ctx, stream, cfg)
}

func (b bindingJetStream) UpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return b.bindConsumer(ctx, stream, cfg)
}

func (b bindingJetStream) CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return b.bindConsumer(ctx, stream, cfg)
}

func (b bindingJetStream) bindKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := b.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, notBootstrapped("kv bucket", cfg.Bucket, err)
	}
	return kv, nil
}

func (b bindingJetStream) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return b.bindKeyValue(ctx, cfg)
}

func (b bindingJetStream) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return b.bindKeyValue(ctx, cfg)
}

func (b bindingJetStream) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return b.bindKeyValue(ctx, cfg)
}

func (b bindingJetStream) bindObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	o, err := b.ObjectStore(ctx, cfg.Bucket)
	if err != nil {
		return nil, notBootstrapped("object store", cfg.Bucket, err)
	}
	return o, nil
}

func (b bindingJetStream) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return b.bindObjectStore(ctx, cfg)
}

func (b bindingJetStream) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return b.bindObjectStore(ctx, cfg)
}

func (b bindingJetStream) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return b.bindObjectStore(ctx, cfg)
}
