package scenariotest

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// MixedStream generates, app by app and slot by slot, snapshots (a new
// version every 20 slots), a SARIF upload per new version (one in ten
// critical) and one certificate per app (one in ten close to expiry, one in
// twenty managed by cert-manager): the benchmarks' workload. Apps are
// spread PerNS to a namespace, each with its own PVC. With ObserveEvery
// set, a workload.observed event of what runs on the PVC follows one
// snapshot event in ObserveEvery.
type MixedStream struct {
	Apps, PerNS  int
	Start        time.Time
	ObserveEvery int
}

// Names are the namespace and name of app i.
func (m MixedStream) Names(i int) (ns, app string) {
	return fmt.Sprintf("bench-%05d", i/m.PerNS), fmt.Sprintf("app-%05d", i)
}

// Certs are the apps' certificates.
func (m MixedStream) Certs() []events.Event {
	var out []events.Event
	for i := range m.Apps {
		ns, app := m.Names(i)
		days := 60.0
		if i%10 == 0 {
			days = 5
		}
		notAfter := m.Start.Add(time.Duration(days * float64(24*time.Hour)))
		var renew *time.Time
		if i%20 == 0 {
			r := notAfter.Add(-2 * 24 * time.Hour)
			renew = &r
		}
		out = append(out, Cert(ns, app+"-tls", strconv.Itoa(i), notAfter, days,
			[]events.ObjectRef{Workload(ns, "StatefulSet", app)}, renew))
	}
	return out
}

// vulnerable says whether version of app has a critical finding: one in
// ten, spread by a hash.
func vulnerable(app string, version int) bool {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", app, version)
	return h.Sum32()%10 == 0
}

// Slot returns the events of slot k for every app.
func (m MixedStream) Slot(k int) []events.Event {
	out := make([]events.Event, 0, m.Apps+m.Apps/20)
	at := m.Start.Add(time.Duration(k) * time.Minute)
	for i := range m.Apps {
		ns, app := m.Names(i)
		v := k / 20
		version := fmt.Sprintf("%s-v%d", app, v)
		run := Run{App: app, Versions: []string{version}}
		if k%20 == 0 {
			var findings []events.Finding
			if vulnerable(app, v) {
				findings = []events.Finding{Critical}
			}
			out = append(out, SARIF(ns, app, fmt.Sprintf("%s-u%d", app, v), version, at, findings...))
		}
		out = append(out, Snapshot(ns, "data-"+app, fmt.Sprintf("%s-s%d", app, k), at.Add(time.Second), run))
		if m.ObserveEvery > 0 && (k*m.Apps+i)%m.ObserveEvery == 0 {
			out = append(out, Observed(ns, "data-"+app, at.Add(2*time.Second), []string{app + "-tls"}, run))
		}
	}
	return out
}
