package manifests

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
)

// serviceAssets are the JetStream assets each service uses, as the
// bootstrap creates them and auth.conf grants them (the natsServices'
// default names).
var serviceAssets = map[string]struct {
	kv, obj   []string
	consumers []consumerAsset
}{
	"sastingest": {kv: []string{"SARIF_UPLOADS", "SARIF_DELIVERIES"}, obj: []string{"SARIF_LOGS", "SARIF_BASELINES", "SARIF_PENDING"}},
	"certwatcher": {kv: []string{"certwatcher"}, consumers: []consumerAsset{
		{events.StreamCertificate, "certwatcher-rotation", []string{events.TypeCertificateRotationRequest}},
	}},
	"snapshotter": {kv: []string{"snapshotter-observations", "snapshotter-recommendations"}, consumers: []consumerAsset{
		{events.StreamSnapshot, "snapshotter-pins", []string{events.TypeSnapshotPinRequested, events.TypeSnapshotUnpinRequested}},
		{events.StreamDecision, "snapshotter-restores", []string{events.TypeRestoreRequested}},
		{events.StreamDecision, "snapshotter-recommendations", []string{events.TypeRestoreRecommended}},
	}},
	"correlator": {kv: []string{"stateguard-correlator"}, obj: []string{"stateguard-audit"}, consumers: []consumerAsset{
		{events.StreamSARIF, "correlator-sarif", []string{events.TypeSARIFUploaded}},
		{events.StreamSnapshot, "correlator-snapshot", []string{events.TypeSnapshotCompleted, events.TypeSnapshotFailed, events.TypeSnapshotVerified}},
		{events.StreamCertificate, "correlator-certificate", []string{events.TypeCertificateExpiring, events.TypeCertificateRotated, events.TypeCertificateRotationFailed}},
	}},
}

type consumerAsset struct {
	stream, name string
	types        []string
}

func (c consumerAsset) config() events.ConsumerConfig {
	cfg := events.ConsumerConfig{Stream: c.stream, Name: c.name, AckWait: 5 * time.Second, MaxDeliver: 3}
	for _, t := range c.types {
		cfg.Subjects = append(cfg.Subjects, events.SubjectOf(t))
	}
	return cfg
}

// natsServices are the services' NATS users (all but admin).
var natsServices = natsUsers[:4]

// matrixServer boots a NATS server from the dev overlay's nats-config
// ConfigMap (the base's nats.conf and auth.conf, as shipped, with the test's
// passwords in the environment as the StatefulSet sets them) and returns a
// function connecting as a user with its client certificate.
func matrixServer(t *testing.T) func(ctx context.Context, user, cert, pass string, opts ...events.Option) (*events.Client, error) {
	t.Helper()
	dir := t.TempDir()
	pki(t, dir, natsUsers...)
	opts, err := server.ProcessConfigFile(natsConfig(t, "dev", dir))
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Fatalf("jetstream %v, sync always %v; want both", opts.JetStream, opts.SyncAlways)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	url := fmt.Sprintf("tls://localhost:%d", srv.Addr().(*net.TCPAddr).Port)
	return func(ctx context.Context, user, cert, pass string, opts ...events.Option) (*events.Client, error) {
		cfg := events.ConnConfig{URL: url, User: user, Password: pass, TLSCA: filepath.Join(dir, "server", "ca.crt"), ReconnectWait: 50 * time.Millisecond}
		if cert != "" {
			cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, cert, "tls.crt"), filepath.Join(dir, cert, "tls.key")
		}
		opts = append([]events.Option{events.WithSource("/stateguard/" + user), events.WithPublishRetry(1, 50*time.Millisecond)}, opts...)
		c, err := events.Connect(ctx, cfg, opts...)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		// Refusals are provoked on purpose; keep them out of the test
		// output (LastError still records them).
		c.Conn().SetErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
		return c, nil
	}
}

// bootstrap creates, as admin, what the natsServices' bootstrap subcommands
// create: every stream, every bucket and every durable consumer.
func bootstrap(ctx context.Context, admin *events.Client) error {
	if err := admin.EnsureStreams(ctx, events.StreamOptions{Replicas: 1}); err != nil {
		return err
	}
	js := admin.JetStream()
	for _, a := range serviceAssets {
		for _, b := range a.kv {
			if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b, History: 1}); err != nil {
				return fmt.Errorf("kv %s: %w", b, err)
			}
		}
		for _, b := range a.obj {
			if _, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: b}); err != nil {
				return fmt.Errorf("object store %s: %w", b, err)
			}
		}
		for _, c := range a.consumers {
			if err := admin.EnsureConsumer(ctx, c.config()); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestNATSPermissionMatrix is the NATS counterpart of a SubjectAccessReview
// matrix, against a real server booted from the shipped nats.conf and
// auth.conf: each service's user, binding to what the bootstrap created
// (events.WithBind), can do everything the service does — bind its
// streams, publish its events, consume, ack and dead-letter on its own
// durable consumers, put, get, list and purge in its own buckets — and is
// refused everything else: another service's buckets, consumers and events,
// and any change to a stream or consumer (the abuses of issue 18 among
// them: reading the correlator's state, deleting its consumer, purging its
// bucket, deleting a DECISION message, changing DECISION's retention,
// adding a republish rule to SARIF, publishing a forged decision).
func TestNATSPermissionMatrix(t *testing.T) {
	connect := matrixServer(t)
	admin, err := connect(t.Context(), "admin", "admin", password("admin"))
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	if err := bootstrap(t.Context(), admin); err != nil {
		t.Fatalf("bootstrap as admin: %v", err)
	}
	clients := map[string]*events.Client{}
	for _, u := range natsServices {
		c, err := connect(t.Context(), u, u, password(u), events.WithBind())
		if err != nil {
			t.Fatalf("connect as %s: %v", u, err)
		}
		clients[u] = c
	}

	t.Run("allowed", func(t *testing.T) {
		for _, u := range natsServices {
			t.Run(u, func(t *testing.T) { serviceRuns(t, admin, clients, u) })
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, u := range natsServices {
			subjects := forbidden(u)
			if len(subjects) < 30 {
				t.Fatalf("%s: only %d forbidden subjects listed", u, len(subjects))
			}
			for _, subj := range subjects {
				if err := deniedPublish(clients[u], subj); err != nil {
					t.Errorf("%s: %v", u, err)
				}
			}
			// What the user may not read: other events, other buckets'
			// updates.
			for _, subj := range []string{"stateguard.>", "$KV.stateguard-correlator.>", "$KV.SARIF_UPLOADS.>", "$JS.EVENT.ADVISORY.>"} {
				if err := deniedSubscribe(clients[u], subj); err != nil {
					t.Errorf("%s: %v", u, err)
				}
			}
		}
	})

	t.Run("the abuses fail end to end", func(t *testing.T) {
		// The republish rule of the probe: SARIF events copied into
		// DECISION's subjects. The update request is refused (it never
		// reaches the server's API, so it times out), and SARIF's
		// configuration is unchanged.
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		cfg := events.StreamConfigs(events.StreamOptions{Replicas: 1})[0]
		cfg.RePublish = &jetstream.RePublish{Source: "stateguard.sarif.uploaded", Destination: "stateguard.restore.recommended"}
		raw, err := jetstream.New(clients["sastingest"].Conn())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.UpdateStream(ctx, cfg); err == nil {
			t.Error("sastingest updated SARIF with a republish rule through the raw JetStream API")
		}
		s, err := admin.JetStream().Stream(t.Context(), events.StreamSARIF)
		if err != nil {
			t.Fatal(err)
		}
		if s.CachedInfo().Config.RePublish != nil {
			t.Error("SARIF has a republish rule")
		}
		// The correlator's state, read directly.
		if _, err := raw.KeyValue(ctx, "stateguard-correlator"); err == nil {
			t.Error("sastingest opened the correlator's bucket")
		}
		// The correlator's consumer, deleted.
		if err := raw.DeleteConsumer(ctx, events.StreamSARIF, "correlator-sarif"); err == nil {
			t.Error("sastingest deleted the correlator's consumer")
		}
		if _, err := admin.JetStream().Consumer(t.Context(), events.StreamSARIF, "correlator-sarif"); err != nil {
			t.Errorf("the correlator's consumer is gone: %v", err)
		}
	})
}

// serviceRuns performs, as service u, every operation the service needs,
// each of which must succeed.
func serviceRuns(t *testing.T, admin *events.Client, clients map[string]*events.Client, u string) {
	c := clients[u]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.EnsureStreams(ctx, events.StreamOptions{Names: events.StreamsOf(u)}); err != nil {
		t.Errorf("bind the streams %v: %v", events.StreamsOf(u), err)
	}
	for _, spec := range events.Catalogue {
		if spec.Producer != u {
			continue
		}
		ev, err := c.NewEvent(spec.Type, "matrix-"+spec.Type, spec.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, ev); err != nil {
			t.Errorf("publish its %s: %v", spec.Type, err)
		}
	}
	for _, a := range serviceAssets[u].consumers {
		consumeAckAndDeadLetter(ctx, t, admin, c, a)
	}
	js := c.JetStream()
	for _, b := range serviceAssets[u].kv {
		useKV(ctx, t, js, b)
	}
	for _, b := range serviceAssets[u].obj {
		useObjectStore(ctx, t, js, b)
	}
	for _, stream := range readsStreams[u] {
		readWithOrderedConsumer(ctx, t, js, stream)
	}
}

// readsStreams are the event streams a service reads whole with ordered
// consumers: the correlator's review-cycle report.
var readsStreams = map[string][]string{
	"correlator": {events.StreamSARIF, events.StreamSnapshot, events.StreamCertificate, events.StreamDecision},
}

// readWithOrderedConsumer reads the first message of stream through an
// ordered consumer (named, unfiltered, AckNone), as the report does.
func readWithOrderedConsumer(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) {
	t.Helper()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Errorf("an ordered consumer on %s: %v", stream, err)
		return
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Errorf("read %s with an ordered consumer: %v", stream, err)
	}
}

// consumeAckAndDeadLetter binds to the durable consumer a, acknowledges
// one event of each type it reads and dead-letters a malformed one, all
// published by admin.
func consumeAckAndDeadLetter(ctx context.Context, t *testing.T, admin, c *events.Client, a consumerAsset) {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]bool{}
	sub, err := c.Consume(ctx, a.config(), func(_ context.Context, ev events.Event) error {
		mu.Lock()
		acked[ev.Type()] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Errorf("bind and consume %s/%s: %v", a.stream, a.name, err)
		return
	}
	defer func() {
		if err := sub.Stop(ctx); err != nil {
			t.Errorf("stop %s: %v", a.name, err)
		}
	}()
	for _, typ := range a.types {
		spec, _ := events.Lookup(typ)
		ev, err := admin.NewEvent(typ, "matrix-in-"+a.name+"-"+typ, spec.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	// A malformed message: the consumer dead-letters it.
	if _, err := admin.JetStream().Publish(ctx, events.SubjectOf(a.types[0]), []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	dl := events.DeadLetterSubject(a.stream, a.name)
	if _, err := waitForMessage(ctx, admin.JetStream(), events.StreamDeadLetter, dl); err != nil {
		t.Errorf("no dead letter on %s: %v", dl, err)
	}
	// Every delivery acknowledged: the consumer's ack floor reaches the
	// end of what it was given.
	for {
		cons, err := admin.JetStream().Consumer(ctx, a.stream, a.name)
		if err != nil {
			t.Fatal(err)
		}
		info := cons.CachedInfo()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == len(a.types) && info.NumAckPending == 0 && info.NumPending == 0 && info.AckFloor.Consumer == info.Delivered.Consumer {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("%s: handled %d of %d types, %d pending acks, ack floor %d of %d delivered", a.name, n, len(a.types),
				info.NumAckPending, info.AckFloor.Consumer, info.Delivered.Consumer)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// useKV binds to bucket b and does what the natsServices do with a bucket:
// put, overwrite with a revision check, get, list keys, purge a key.
func useKV(ctx context.Context, t *testing.T, js jetstream.JetStream, b string) {
	t.Helper()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b})
	if err != nil {
		t.Errorf("bind KV %s: %v", b, err)
		return
	}
	rev, err := kv.Put(ctx, "gh.k", []byte{0})
	if err != nil {
		t.Errorf("put into KV %s: %v", b, err)
		return
	}
	if _, err := kv.Update(ctx, "gh.k", []byte{1}, rev); err != nil {
		t.Errorf("update KV %s: %v", b, err)
	}
	if e, err := kv.Get(ctx, "gh.k"); err != nil || string(e.Value()) != "\x01" {
		t.Errorf("get from KV %s: %v", b, err)
	}
	if b != "SARIF_DELIVERIES" && b != "certwatcher" { // the buckets the natsServices list
		lister, err := kv.ListKeysFiltered(ctx, "gh.*")
		if err != nil {
			t.Errorf("list KV %s: %v", b, err)
		} else {
			var keys []string
			for k := range lister.Keys() {
				keys = append(keys, k)
			}
			if !slices.Equal(keys, []string{"gh.k"}) {
				t.Errorf("list KV %s: %v", b, keys)
			}
		}
	}
	if err := kv.Purge(ctx, "gh.k"); err != nil {
		t.Errorf("purge a key of KV %s: %v", b, err)
	}
}

// useObjectStore binds to store b and puts, replaces (purging the old
// chunks), reads and deletes an object.
func useObjectStore(ctx context.Context, t *testing.T, js jetstream.JetStream, b string) {
	t.Helper()
	store, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: b})
	if err != nil {
		t.Errorf("bind object store %s: %v", b, err)
		return
	}
	for i := range 2 {
		if _, err := store.PutBytes(ctx, "o", []byte(strings.Repeat("x", 200_000*(i+1)))); err != nil {
			t.Errorf("put into object store %s: %v", b, err)
		}
	}
	if got, err := store.GetBytes(ctx, "o"); err != nil || len(got) != 400_000 {
		t.Errorf("get from object store %s: %d bytes, %v", b, len(got), err)
	}
	if _, err := store.GetInfo(ctx, "o"); err != nil {
		t.Errorf("info from object store %s: %v", b, err)
	}
	if err := store.Delete(ctx, "o"); err != nil {
		t.Errorf("delete from object store %s: %v", b, err)
	}
}

// forbidden lists subjects user u may not publish to: the JetStream API
// calls that change streams or consumers, every call on another service's
// buckets and consumers, and the events of other natsServices.
func forbidden(u string) []string {
	var subj []string
	for _, s := range []string{events.StreamSARIF, events.StreamCertificate, events.StreamSnapshot, events.StreamDecision, events.StreamDeadLetter} {
		subj = append(subj,
			"$JS.API.STREAM.UPDATE."+s, // retention, republish rules
			"$JS.API.STREAM.DELETE."+s,
			"$JS.API.STREAM.PURGE."+s,
			"$JS.API.STREAM.MSG.DELETE."+s,
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.DIRECT.GET."+s,
			"$JS.API.CONSUMER.CREATE."+s,
			"$JS.API.CONSUMER.CREATE."+s+".tap.stateguard.>",
			"$JS.API.CONSUMER.DURABLE.CREATE."+s+".tap",
		)
	}
	subj = append(subj,
		"$JS.API.STREAM.CREATE.TAP", // a stream of its own over others' subjects
		"$JS.API.STREAM.CREATE.KV_stolen",
		"$JS.API.ACCOUNT.PURGE",
		"$JS.API.STREAM.LIST",
		"$JS.API.SERVER.REMOVE",
	)
	for owner, a := range serviceAssets {
		for _, c := range a.consumers {
			if owner == u {
				// Its own consumers are bound, never changed.
				subj = append(subj, "$JS.API.CONSUMER.DELETE."+c.stream+"."+c.name,
					"$JS.API.CONSUMER.CREATE."+c.stream+"."+c.name, "$JS.API.CONSUMER.PAUSE."+c.stream+"."+c.name)
				continue
			}
			subj = append(subj,
				"$JS.API.CONSUMER.CREATE."+c.stream+"."+c.name, // change its configuration
				"$JS.API.CONSUMER.DELETE."+c.stream+"."+c.name,
				"$JS.API.CONSUMER.INFO."+c.stream+"."+c.name,
				"$JS.API.CONSUMER.MSG.NEXT."+c.stream+"."+c.name, // steal its deliveries
				"$JS.ACK."+c.stream+"."+c.name+".1.1.1.1.0",      // ack them away
				events.DeadLetterSubject(c.stream, c.name),
			)
		}
		stream := func(kind, b string) string { return kind + b }
		for _, b := range a.kv {
			subj = append(subj, stream("$JS.API.STREAM.DELETE.KV_", b), stream("$JS.API.STREAM.UPDATE.KV_", b))
			if owner == u {
				continue
			}
			subj = append(subj, "$KV."+b+".k",
				stream("$JS.API.STREAM.INFO.KV_", b), stream("$JS.API.STREAM.PURGE.KV_", b),
				stream("$JS.API.STREAM.MSG.GET.KV_", b), "$JS.API.DIRECT.GET.KV_"+b+".$KV."+b+".k",
				stream("$JS.API.CONSUMER.CREATE.KV_", b), "$JS.API.CONSUMER.CREATE.KV_"+b+".x.$KV."+b+".>")
		}
		for _, b := range a.obj {
			subj = append(subj, stream("$JS.API.STREAM.DELETE.OBJ_", b), stream("$JS.API.STREAM.UPDATE.OBJ_", b))
			if owner == u {
				continue
			}
			subj = append(subj, "$O."+b+".M.o",
				stream("$JS.API.STREAM.INFO.OBJ_", b), stream("$JS.API.STREAM.PURGE.OBJ_", b),
				"$JS.API.DIRECT.GET.OBJ_"+b+".$O."+b+".M.o", "$JS.API.CONSUMER.CREATE.OBJ_"+b+".x.$O."+b+".C.>")
		}
	}
	for _, spec := range events.Catalogue {
		if spec.Producer != u {
			subj = append(subj, spec.Subject()) // a forged event
		}
	}
	return subj
}

// deniedSubscribe subscribes and waits for the server's answer: a refused
// subscription is reported before the flush's PONG.
func deniedSubscribe(c *events.Client, subject string) error {
	nc := c.Conn()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("flush after subscribing %s: %w", subject, err)
	}
	last := nc.LastError()
	if last == nil || !strings.Contains(last.Error(), "Permissions Violation for Subscription to \""+subject+"\"") {
		return fmt.Errorf("subscription to %s was not refused (last error: %w)", subject, last)
	}
	return nil
}

// TestNATSCertificateNamesTheUser checks verify_and_map: the client
// certificate, not the user name sent, picks the NATS user; the password
// must be that user's.
func TestNATSCertificateNamesTheUser(t *testing.T) {
	connect := matrixServer(t)
	for _, tc := range []struct {
		name, user, cert, pass string
		ok                     bool
	}{
		{"own certificate and password", "sastingest", "sastingest", password("sastingest"), true},
		{"no client certificate", "correlator", "", password("correlator"), false},
		{"wrong password", "correlator", "correlator", "guess", false},
		{"another user's name and password with sastingest's certificate", "correlator", "sastingest", password("correlator"), false},
		{"admin's name and password with sastingest's certificate", "admin", "sastingest", password("admin"), false},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		c, err := connect(ctx, tc.user, tc.cert, tc.pass)
		cancel()
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case !tc.ok && err == nil:
			t.Errorf("%s: connected", tc.name)
		}
		if err != nil {
			continue
		}
		// Connected as the certificate's user: its rights, not more.
		if err := deniedPublish(c, "stateguard.restore.recommended"); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
