// Command certwatcher finds every TLS certificate in a cluster (and in
// watched directories), publishes expiry warnings, exports metrics, and
// rotates certificates on request.
package main

import (
	"github.com/stateguard/stateguard/pkg/events/service"

	"github.com/stateguard/stateguard/services/certwatcher/internal/app"
)

func main() { service.Main(app.Run) }
