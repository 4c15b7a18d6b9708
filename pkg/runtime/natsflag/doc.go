// Package natsflag defines the NATS connection flags every stateguard
// process has (--nats-url, --nats-creds, --nats-tls-*, reconnects, pings),
// each with its environment variable, on an events.ConnConfig. The settings
// are the transport's (pkg/events); their flags are the runtime's, so the
// contract module holds no flag helpers.
package natsflag
