// Package ingest turns one SARIF upload into stored facts: it streams the
// log through the parser while keeping a gzip copy on local disk, derives the
// upload id from the content hash and the metadata, stores the compressed
// log in a JetStream Object Store bucket, compares the findings with the
// previous upload of the same (repository, category, ref) by fingerprint,
// publishes exactly one io.stateguard.sarif.uploaded.v1 event, and records
// the upload's status in a JetStream KV bucket. An upload is reported
// accepted only once all of that is stored; a re-posted upload finds its
// status and publishes nothing.
//
// Pipeline.Ingest runs the steps in order — receive, parse, store, publish,
// record — each a named method. Storage is behind the small interfaces of
// storage.go (Logs, Baselines, Statuses, Held), implemented on JetStream in
// jetstream.go, the one file of the package that imports nats.go.
//
// Queue runs GitHub-style uploads (Accept, Resume, Status): held as
// received before they are accepted, ingested in the background, their
// outcome recorded for GitHub's processing_status.
package ingest
