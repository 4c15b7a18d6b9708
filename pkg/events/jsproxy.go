package events

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// link is one NATS connection and its JetStream context. A Client swaps in
// a new link when NATS closes the connection for good; gen counts them.
type link struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	gen uint64
}

// jsProxy is the jetstream.JetStream a Client hands out: every call goes to
// the current connection, so a handle taken at start keeps working after
// the connection was re-created, and every subject built from a caller's
// identifier is checked (CheckSubject) before it is sent. Stream and
// Consumer handles it returns belong to the connection of the moment; KV
// handles follow the connection too (kvProxy).
type jsProxy struct{ c *Client }

var (
	_ jetstream.JetStream = (*jsProxy)(nil)
	_ jetstream.KeyValue  = (*kvProxy)(nil)
)

func (p *jsProxy) js() jetstream.JetStream { return p.c.link.Load().js }

func (p *jsProxy) AccountInfo(ctx context.Context) (*jetstream.AccountInfo, error) {
	return p.js().AccountInfo(ctx)
}
func (p *jsProxy) Conn() *nats.Conn                    { return p.c.link.Load().nc }
func (p *jsProxy) Options() jetstream.JetStreamOptions { return p.js().Options() }

// Publisher.

func (p *jsProxy) Publish(ctx context.Context, subject string, payload []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if err := CheckSubject(subject); err != nil {
		return nil, err
	}
	return p.js().Publish(ctx, subject, payload, opts...)
}

func (p *jsProxy) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if err := CheckSubject(msg.Subject); err != nil {
		return nil, err
	}
	return p.js().PublishMsg(ctx, msg, opts...)
}

func (p *jsProxy) PublishAsync(subject string, payload []byte, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if err := CheckSubject(subject); err != nil {
		return nil, err
	}
	return p.js().PublishAsync(subject, payload, opts...)
}

func (p *jsProxy) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if err := CheckSubject(msg.Subject); err != nil {
		return nil, err
	}
	return p.js().PublishMsgAsync(msg, opts...)
}

func (p *jsProxy) PublishAsyncPending() int              { return p.js().PublishAsyncPending() }
func (p *jsProxy) PublishAsyncComplete() <-chan struct{} { return p.js().PublishAsyncComplete() }
func (p *jsProxy) CleanupPublisher()                     { p.js().CleanupPublisher() }

// StreamManager.

func (p *jsProxy) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if err := checkSubjects(append(cfg.Subjects, apiSubject(cfg.Name, ""))...); err != nil {
		return nil, err
	}
	return p.js().CreateStream(ctx, cfg)
}

func (p *jsProxy) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if err := checkSubjects(append(cfg.Subjects, apiSubject(cfg.Name, ""))...); err != nil {
		return nil, err
	}
	return p.js().UpdateStream(ctx, cfg)
}

func (p *jsProxy) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if err := checkSubjects(append(cfg.Subjects, apiSubject(cfg.Name, ""))...); err != nil {
		return nil, err
	}
	return p.js().CreateOrUpdateStream(ctx, cfg)
}

func (p *jsProxy) Stream(ctx context.Context, stream string) (jetstream.Stream, error) {
	if err := CheckSubject(apiSubject(stream, "")); err != nil {
		return nil, err
	}
	return p.js().Stream(ctx, stream)
}

func (p *jsProxy) StreamNameBySubject(ctx context.Context, subject string) (string, error) {
	return p.js().StreamNameBySubject(ctx, subject)
}

func (p *jsProxy) DeleteStream(ctx context.Context, stream string) error {
	if err := CheckSubject(apiSubject(stream, "")); err != nil {
		return err
	}
	return p.js().DeleteStream(ctx, stream)
}

func (p *jsProxy) ListStreams(ctx context.Context, opts ...jetstream.StreamListOpt) jetstream.StreamInfoLister {
	return p.js().ListStreams(ctx, opts...)
}

func (p *jsProxy) StreamNames(ctx context.Context, opts ...jetstream.StreamListOpt) jetstream.StreamNameLister {
	return p.js().StreamNames(ctx, opts...)
}

// StreamConsumerManager.

func checkConsumer(stream string, cfg jetstream.ConsumerConfig) error {
	name := cfg.Durable
	if cfg.Name != "" {
		name = cfg.Name
	}
	return checkSubjects(append(cfg.FilterSubjects, apiSubject(stream, name, cfg.FilterSubject))...)
}

func (p *jsProxy) CreateOrUpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if err := checkConsumer(stream, cfg); err != nil {
		return nil, err
	}
	return p.js().CreateOrUpdateConsumer(ctx, stream, cfg)
}

func (p *jsProxy) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if err := checkConsumer(stream, cfg); err != nil {
		return nil, err
	}
	return p.js().CreateConsumer(ctx, stream, cfg)
}

func (p *jsProxy) UpdateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if err := checkConsumer(stream, cfg); err != nil {
		return nil, err
	}
	return p.js().UpdateConsumer(ctx, stream, cfg)
}

func (p *jsProxy) OrderedConsumer(ctx context.Context, stream string, cfg jetstream.OrderedConsumerConfig) (jetstream.Consumer, error) {
	if err := checkSubjects(append(cfg.FilterSubjects, apiSubject(stream, ""))...); err != nil {
		return nil, err
	}
	return p.js().OrderedConsumer(ctx, stream, cfg)
}

func (p *jsProxy) Consumer(ctx context.Context, stream, consumer string) (jetstream.Consumer, error) {
	if err := CheckSubject(apiSubject(stream, consumer)); err != nil {
		return nil, err
	}
	return p.js().Consumer(ctx, stream, consumer)
}

func (p *jsProxy) DeleteConsumer(ctx context.Context, stream, consumer string) error {
	if err := CheckSubject(apiSubject(stream, consumer)); err != nil {
		return err
	}
	return p.js().DeleteConsumer(ctx, stream, consumer)
}

func (p *jsProxy) PauseConsumer(ctx context.Context, stream, consumer string, pauseUntil time.Time) (*jetstream.ConsumerPauseResponse, error) {
	if err := CheckSubject(apiSubject(stream, consumer)); err != nil {
		return nil, err
	}
	return p.js().PauseConsumer(ctx, stream, consumer, pauseUntil)
}

func (p *jsProxy) ResumeConsumer(ctx context.Context, stream, consumer string) (*jetstream.ConsumerPauseResponse, error) {
	if err := CheckSubject(apiSubject(stream, consumer)); err != nil {
		return nil, err
	}
	return p.js().ResumeConsumer(ctx, stream, consumer)
}

func (p *jsProxy) ResetConsumer(ctx context.Context, stream, consumer string) (*jetstream.ConsumerResetResponse, error) {
	if err := CheckSubject(apiSubject(stream, consumer)); err != nil {
		return nil, err
	}
	return p.js().ResetConsumer(ctx, stream, consumer)
}

func (p *jsProxy) ResetConsumerToSequence(ctx context.Context, stream, consumer string, seq uint64) (*jetstream.ConsumerResetResponse, error) {
	if err := CheckSubject(apiSubject(stream, consumer)); err != nil {
		return nil, err
	}
	return p.js().ResetConsumerToSequence(ctx, stream, consumer, seq)
}

func (p *jsProxy) CreateOrUpdatePushConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.PushConsumer, error) {
	if err := checkConsumer(stream, cfg); err != nil {
		return nil, err
	}
	return p.js().CreateOrUpdatePushConsumer(ctx, stream, cfg)
}

func (p *jsProxy) CreatePushConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.PushConsumer, error) {
	if err := checkConsumer(stream, cfg); err != nil {
		return nil, err
	}
	return p.js().CreatePushConsumer(ctx, stream, cfg)
}

func (p *jsProxy) UpdatePushConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.PushConsumer, error) {
	if err := checkConsumer(stream, cfg); err != nil {
		return nil, err
	}
	return p.js().UpdatePushConsumer(ctx, stream, cfg)
}

func (p *jsProxy) PushConsumer(ctx context.Context, stream, consumer string) (jetstream.PushConsumer, error) {
	if err := CheckSubject(apiSubject(stream, consumer)); err != nil {
		return nil, err
	}
	return p.js().PushConsumer(ctx, stream, consumer)
}

// KeyValueManager: the handles follow the connection.

func (p *jsProxy) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	if err := CheckSubject(kvSubject(bucket, ">")); err != nil {
		return nil, err
	}
	kv, err := p.js().KeyValue(ctx, bucket)
	return p.kv(kv, err)
}

func (p *jsProxy) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if err := CheckSubject(kvSubject(cfg.Bucket, ">")); err != nil {
		return nil, err
	}
	kv, err := p.js().CreateKeyValue(ctx, cfg)
	return p.kv(kv, err)
}

func (p *jsProxy) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if err := CheckSubject(kvSubject(cfg.Bucket, ">")); err != nil {
		return nil, err
	}
	kv, err := p.js().UpdateKeyValue(ctx, cfg)
	return p.kv(kv, err)
}

func (p *jsProxy) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if err := CheckSubject(kvSubject(cfg.Bucket, ">")); err != nil {
		return nil, err
	}
	kv, err := p.js().CreateOrUpdateKeyValue(ctx, cfg)
	return p.kv(kv, err)
}

func (p *jsProxy) kv(kv jetstream.KeyValue, err error) (jetstream.KeyValue, error) {
	if err != nil {
		return nil, err
	}
	return &kvProxy{c: p.c, bucket: kv.Bucket(), kv: kv, gen: p.c.link.Load().gen}, nil
}

func (p *jsProxy) DeleteKeyValue(ctx context.Context, bucket string) error {
	if err := CheckSubject(kvSubject(bucket, ">")); err != nil {
		return err
	}
	return p.js().DeleteKeyValue(ctx, bucket)
}

func (p *jsProxy) KeyValueStoreNames(ctx context.Context) jetstream.KeyValueNamesLister {
	return p.js().KeyValueStoreNames(ctx)
}

func (p *jsProxy) KeyValueStores(ctx context.Context) jetstream.KeyValueLister {
	return p.js().KeyValueStores(ctx)
}

// ObjectStoreManager: handles belong to the connection of the moment.

func (p *jsProxy) ObjectStore(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	return p.js().ObjectStore(ctx, bucket)
}

func (p *jsProxy) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return p.js().CreateObjectStore(ctx, cfg)
}

func (p *jsProxy) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return p.js().UpdateObjectStore(ctx, cfg)
}

func (p *jsProxy) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	return p.js().CreateOrUpdateObjectStore(ctx, cfg)
}

func (p *jsProxy) DeleteObjectStore(ctx context.Context, bucket string) error {
	return p.js().DeleteObjectStore(ctx, bucket)
}

func (p *jsProxy) ObjectStoreNames(ctx context.Context) jetstream.ObjectStoreNamesLister {
	return p.js().ObjectStoreNames(ctx)
}

func (p *jsProxy) ObjectStores(ctx context.Context) jetstream.ObjectStoresLister {
	return p.js().ObjectStores(ctx)
}

// kvProxy is a KV bucket that follows the Client's connection: after the
// connection was re-created, the next call binds the bucket again. Every
// key is checked (CheckSubject on $KV.<bucket>.<key>) before it is sent.
// Watchers and listers belong to the connection they were made on.
type kvProxy struct {
	c      *Client
	bucket string

	mu  sync.Mutex
	kv  jetstream.KeyValue
	gen uint64
}

// current is the bucket on the current connection.
func (k *kvProxy) current(ctx context.Context) (jetstream.KeyValue, error) {
	l := k.c.link.Load()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gen == l.gen {
		return k.kv, nil
	}
	kv, err := l.js.KeyValue(ctx, k.bucket)
	if err != nil {
		return nil, err
	}
	k.kv, k.gen = kv, l.gen
	return kv, nil
}

// key checks key and returns the bucket to send it to.
func (k *kvProxy) key(ctx context.Context, key string) (jetstream.KeyValue, error) {
	if err := CheckSubject(kvSubject(k.bucket, key)); err != nil {
		return nil, err
	}
	return k.current(ctx)
}

func (k *kvProxy) keys(ctx context.Context, keys ...string) (jetstream.KeyValue, error) {
	for _, key := range keys {
		if err := CheckSubject(kvSubject(k.bucket, key)); err != nil {
			return nil, err
		}
	}
	return k.current(ctx)
}

func (k *kvProxy) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	kv, err := k.key(ctx, key)
	if err != nil {
		return nil, err
	}
	return kv.Get(ctx, key)
}

func (k *kvProxy) GetRevision(ctx context.Context, key string, revision uint64) (jetstream.KeyValueEntry, error) {
	kv, err := k.key(ctx, key)
	if err != nil {
		return nil, err
	}
	return kv.GetRevision(ctx, key, revision)
}

func (k *kvProxy) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	kv, err := k.key(ctx, key)
	if err != nil {
		return 0, err
	}
	return kv.Put(ctx, key, value)
}

func (k *kvProxy) PutString(ctx context.Context, key, value string) (uint64, error) {
	kv, err := k.key(ctx, key)
	if err != nil {
		return 0, err
	}
	return kv.PutString(ctx, key, value)
}

func (k *kvProxy) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	kv, err := k.key(ctx, key)
	if err != nil {
		return 0, err
	}
	return kv.Create(ctx, key, value, opts...)
}

func (k *kvProxy) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	kv, err := k.key(ctx, key)
	if err != nil {
		return 0, err
	}
	return kv.Update(ctx, key, value, revision)
}

func (k *kvProxy) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	kv, err := k.key(ctx, key)
	if err != nil {
		return err
	}
	return kv.Delete(ctx, key, opts...)
}

func (k *kvProxy) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	kv, err := k.key(ctx, key)
	if err != nil {
		return err
	}
	return kv.Purge(ctx, key, opts...)
}

func (k *kvProxy) Watch(ctx context.Context, keys string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	kv, err := k.key(ctx, keys)
	if err != nil {
		return nil, err
	}
	return kv.Watch(ctx, keys, opts...)
}

func (k *kvProxy) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	kv, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	return kv.WatchAll(ctx, opts...)
}

func (k *kvProxy) WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	kv, err := k.keys(ctx, keys...)
	if err != nil {
		return nil, err
	}
	return kv.WatchFiltered(ctx, keys, opts...)
}

func (k *kvProxy) Keys(ctx context.Context, opts ...jetstream.WatchOpt) ([]string, error) {
	kv, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	return kv.Keys(ctx, opts...)
}

func (k *kvProxy) ListKeys(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyLister, error) {
	kv, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	return kv.ListKeys(ctx, opts...)
}

func (k *kvProxy) ListKeysFiltered(ctx context.Context, filters ...string) (jetstream.KeyLister, error) {
	kv, err := k.keys(ctx, filters...)
	if err != nil {
		return nil, err
	}
	return kv.ListKeysFiltered(ctx, filters...)
}

func (k *kvProxy) History(ctx context.Context, key string, opts ...jetstream.WatchOpt) ([]jetstream.KeyValueEntry, error) {
	kv, err := k.key(ctx, key)
	if err != nil {
		return nil, err
	}
	return kv.History(ctx, key, opts...)
}

func (k *kvProxy) Bucket() string { return k.bucket }

func (k *kvProxy) PurgeDeletes(ctx context.Context, opts ...jetstream.KVPurgeOpt) error {
	kv, err := k.current(ctx)
	if err != nil {
		return err
	}
	return kv.PurgeDeletes(ctx, opts...)
}

func (k *kvProxy) Status(ctx context.Context) (jetstream.KeyValueStatus, error) {
	kv, err := k.current(ctx)
	if err != nil {
		return nil, err
	}
	return kv.Status(ctx)
}
