// Package envflag defines command-line flags whose defaults come from
// environment variables, so every setting of a stateguard service can be
// given either way: --nats-url or NATS_URL. A flag on the command line wins
// over the environment, which wins over the built-in default.
package envflag
