package model

import (
	"slices"
	"testing"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// The encryption at rest of each snapshot, as the snapshotter reported it,
// shows on its view, and a known-good snapshot reported unencrypted is
// flagged on its application.
func TestUnencryptedKnownGoodIsFlagged(t *testing.T) {
	for _, tc := range []struct {
		name       string
		encryption map[string]string // by snapshot
		want       []string
	}{
		{"every snapshot encrypted: nothing flagged", map[string]string{"s1": events.EncryptionEncrypted, "s2": events.EncryptionEncrypted}, nil},
		{"the known-good unencrypted: flagged", map[string]string{"s1": events.EncryptionEncrypted, "s2": events.EncryptionUnencrypted}, []string{"s2"}},
		{"an older snapshot unencrypted, not known-good: not flagged", map[string]string{"s1": events.EncryptionUnencrypted, "s2": events.EncryptionEncrypted}, nil},
		{"unknown is not flagged as unencrypted", map[string]string{"s2": events.EncryptionUnknown}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := NewState(scenario.CaseNS)
			var evs []events.Event
			for _, ev := range scenario.CaseStudy()[:6] { // certificates, v1's upload, s1, s2: s2 is the known-good
				if p, err := events.Decode[events.SnapshotCompleted](ev); err == nil && tc.encryption[p.VolumeSnapshot] != "" {
					ev = scenario.Encrypted(ev, tc.encryption[p.VolumeSnapshot], "evidence of "+p.VolumeSnapshot)
				}
				evs = append(evs, ev)
			}
			feed(t, DefaultRules(), st, evs...)
			v := Derive(DefaultRules(), st)
			var av AppView
			for _, a := range v.Apps {
				if a.App == scenario.CaseApp {
					av = a
				}
			}
			if kg := av.KnownGood[scenario.CasePVC]; !slices.Equal(kg, []string{"s2"}) {
				t.Fatalf("known-good %v, want s2", kg)
			}
			if !slices.Equal(av.UnencryptedKnownGood, tc.want) {
				t.Errorf("unencrypted known-good %v, want %v", av.UnencryptedKnownGood, tc.want)
			}
			for _, sv := range av.Snapshots {
				if want := tc.encryption[sv.Name]; sv.Encryption != want || (want != "" && !slices.Equal(sv.EncryptionEvidence, []string{"evidence of " + sv.Name})) {
					t.Errorf("snapshot %s shows encryption %q %v, want %q", sv.Name, sv.Encryption, sv.EncryptionEvidence, want)
				}
			}
		})
	}
}
