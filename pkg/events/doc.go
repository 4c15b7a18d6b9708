// Package events is stateguard's event contract and its transport.
//
// The contract: every event is a CloudEvents 1.0 event of a type listed in
// Catalogue, with a JSON payload of the Go type the Catalogue names and a
// JSON Schema under schemas/. Subjects start with "stateguard." and follow
// the type (io.stateguard.snapshot.completed.v1 → stateguard.snapshot.completed);
// each domain has its own stream (SARIF, CERTIFICATE, SNAPSHOT, DECISION),
// and dead letters go to DEADLETTER.
//
// The transport: a Client publishes in CloudEvents binary content mode on
// NATS JetStream (attributes as percent-encoded ce- headers, data as the
// body, Nats-Msg-Id = event id so the server drops re-sends), waits for the
// server's acknowledgement before it reports success, and consumes through
// durable pull consumers with explicit acks, redelivery with backoff, and a
// dead-letter stream for events that fail for good. Trace context travels in
// the CloudEvents distributed-tracing extension. Publish stores events one
// by one; PublishBatch and a Batcher (shared by concurrent callers) store
// them in JetStream atomic batches, one disk sync for many events under
// sync_interval: always.
//
// Delivery is at least once: handlers must be idempotent.
package events

//go:generate go run ./internal/schemagen/gen
