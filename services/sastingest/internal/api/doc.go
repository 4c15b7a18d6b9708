// Package api is sastingest's HTTP surface: POST /v1/sarif, the
// GitHub-compatible code-scanning upload endpoints, scanner webhooks, the
// CloudEvents HTTP binding, and upload status. It checks who is writing
// and what is sent (content type, encoding, size), maps every failure to a
// status code with an RFC 9457 problem+json body, and hands the body as a
// stream to the ingest pipeline, or a GitHub-style upload to ingest.Queue.
// It only translates HTTP: storage is the ingest package's.
package api
