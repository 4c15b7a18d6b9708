package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

var (
	openIncidentsDesc = prometheus.NewDesc("stateguard_correlator_open_incidents",
		"Open incidents of each application, read from the state at scrape time.", []string{"namespace", "app"}, nil)
	knownGoodDesc = prometheus.NewDesc("stateguard_correlator_known_good_snapshot_timestamp_seconds",
		"Unix time of the newest known-good (clean, ready) snapshot of each application's PVC, read from the state at scrape time.",
		[]string{"namespace", "app", "pvc"}, nil)
)

// postureTimeout bounds one scrape's reading of the state.
const postureTimeout = 10 * time.Second

// posture exports what the API shows (open incidents, the known-good
// snapshots), read from KV at each scrape as the API reads it, so every
// replica exports the same values and a restart loses nothing.
type posture struct{ e *Engine }

var _ prometheus.Collector = posture{}

// Describe implements prometheus.Collector.
func (p posture) Describe(ch chan<- *prometheus.Desc) {
	ch <- openIncidentsDesc
	ch <- knownGoodDesc
}

// Collect implements prometheus.Collector.
func (p posture) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), postureTimeout)
	defer cancel()
	nss, err := p.e.Namespaces(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(openIncidentsDesc, err)
		return
	}
	for _, ns := range nss {
		st, ok, err := p.e.State(ctx, ns)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(openIncidentsDesc, err)
			return
		}
		if ok {
			postureOf(ch, model.Derive(p.e.o.Rules, st))
		}
	}
}

// postureOf sends the series of one namespace's view.
func postureOf(ch chan<- prometheus.Metric, v model.View) {
	for _, av := range v.Apps {
		open := 0
		for _, inc := range av.Incidents {
			if inc.Open {
				open++
			}
		}
		ch <- prometheus.MustNewConstMetric(openIncidentsDesc, prometheus.GaugeValue, float64(open), av.Namespace, av.App)
		for pvc, names := range av.KnownGood {
			if len(names) == 0 {
				continue
			}
			// chooseKnownGood lists the newest first.
			if sv, ok := av.Snapshot(names[0]); ok {
				ch <- prometheus.MustNewConstMetric(knownGoodDesc, prometheus.GaugeValue, float64(sv.Time.Unix()), av.Namespace, av.App, pvc)
			}
		}
	}
}
