// Package servicetest checks, for every service's tests, what the runtime
// promises about a service's command line (service.Commands): --help lists
// the flags and the subcommands, an unknown subcommand is refused, and
// `bootstrap` creates the service's buckets on a real JetStream. Only tests
// import it.
package servicetest
