// Command sastingest accepts SARIF logs from CI pipelines and scanners
// (its own API, GitHub's code-scanning upload API, signed webhooks and
// CloudEvents), stores each log in JetStream and publishes one
// io.stateguard.sarif.uploaded.v1 event per upload.
package main
