// Command console is stateguard's web console for the on-call engineer:
// every application's restore posture, the timeline behind it, incidents
// with their restore plan, certificates and the event pipeline, as
// server-rendered pages. It reads the correlator's API (with the token the
// user logged in with) and the event streams (a read-only NATS user), and
// changes nothing by itself: an operator's Restore, Resolve and Dismiss go
// through the correlator's operator API.
package main

import "github.com/stateguard/stateguard/pkg/runtime/service"

func main() { service.Main(cli) }

// cli is the console's command line: flags only (it creates nothing, so it
// has no bootstrap); a word that is not a flag is refused, --help exits 0.
var cli = service.Commands("console", run)
