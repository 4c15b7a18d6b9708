package engine

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// The posture gauges (what the alert rules read for an open incident and
// a known-good snapshot growing old) are what the model's view says after
// the case study: its open incidents per app, its newest known-good
// snapshot per PVC.
func TestPostureMetricsFollowTheState(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	reg := prometheus.NewRegistry()
	startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 4, Registerer: reg})
	evs := scenario.CaseStudy()
	publish(t, c, evs...)
	drain(t, c)

	st := model.NewState(scenario.CaseNS)
	for _, ev := range evs {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := model.Apply(model.DefaultRules(), st, in); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]float64{}
	for _, av := range model.Derive(model.DefaultRules(), st).Apps {
		open := 0
		for _, inc := range av.Incidents {
			if inc.Open {
				open++
			}
		}
		want["open_incidents "+av.Namespace+"/"+av.App] = float64(open)
		for pvc, names := range av.KnownGood {
			sv, _ := av.Snapshot(names[0])
			want["known_good "+av.Namespace+"/"+av.App+"/"+pvc] = float64(sv.Time.Unix())
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		name, ok := strings.CutPrefix(mf.GetName(), "stateguard_correlator_")
		if !ok || (name != "open_incidents" && name != "known_good_snapshot_timestamp_seconds") {
			continue
		}
		for _, m := range mf.GetMetric() {
			lv := labels(m)
			if name == "open_incidents" {
				got["open_incidents "+lv["namespace"]+"/"+lv["app"]] = m.GetGauge().GetValue()
			} else {
				got["known_good "+lv["namespace"]+"/"+lv["app"]+"/"+lv["pvc"]] = m.GetGauge().GetValue()
			}
		}
	}
	kinds := map[string]bool{}
	for k, v := range want {
		kinds[strings.Fields(k)[0]] = kinds[strings.Fields(k)[0]] || v > 0
	}
	if !kinds["open_incidents"] || !kinds["known_good"] {
		t.Fatalf("the case study should end with an open incident and a known-good snapshot: %v", want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("posture series (-view +metrics):\n%s", diff)
	}
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}
