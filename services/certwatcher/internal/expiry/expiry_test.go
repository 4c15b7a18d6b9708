package expiry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
)

func TestParseThresholds(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{"defaults sort from earliest warning to expired", DefaultThresholds, []string{"30d", "14d", "7d", "1d", "expired"}, false},
		{"unsorted input and hours are accepted", []string{"expired", "36h", "7d"}, []string{"7d", "36h", "expired"}, false},
		{"a duplicate duration is rejected", []string{"1d", "24h"}, nil, true},
		{"a negative duration is rejected", []string{"-1d"}, nil, true},
		{"nonsense is rejected", []string{"soon"}, nil, true},
		{"an empty list is rejected", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseThresholds(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var names []string
			for _, th := range got {
				names = append(names, th.Name)
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestDue(t *testing.T) {
	ths, err := ParseThresholds(DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name     string
		left     time.Duration
		reported []string
		fire     string
		mark     []string
	}{
		{"60 days left: nothing", 60 * day, nil, "", nil},
		{"exactly 30 days left crosses 30d", 30 * day, nil, "30d", []string{"30d"}},
		{"20 days left after 30d was reported: nothing", 20 * day, []string{"30d"}, "", nil},
		{"first seen 3 days before expiry: only 7d fires, milder ones are marked", 3 * day, nil, "7d", []string{"30d", "14d", "7d"}},
		{"10 days left with 30d reported: 14d", 10 * day, []string{"30d"}, "14d", []string{"14d"}},
		{"expired this instant", 0, []string{"30d", "14d", "7d", "1d"}, "expired", []string{"expired"}},
		{"expired and all reported: nothing", -day, []string{"30d", "14d", "7d", "1d", "expired"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := map[string]bool{}
			for _, r := range tt.reported {
				rep[r] = true
			}
			d := Due(now.Add(tt.left), now, ths, func(th Threshold) bool { return rep[th.Name] })
			var mark []string
			for _, m := range d.Mark {
				mark = append(mark, m.Name)
			}
			if d.Fire.Name != tt.fire {
				t.Errorf("fire = %q, want %q", d.Fire.Name, tt.fire)
			}
			if diff := cmp.Diff(tt.mark, mark); diff != "" {
				t.Errorf("mark (-want +got)\n%s", diff)
			}
		})
	}
}

func TestEventIDIsDeterministicPerFact(t *testing.T) {
	k := Key{Source: events.CertificateSource{Namespace: "ns", Secret: "s", Key: "tls.crt"}, Serial: "0a"}
	th := Threshold{Name: "7d", Before: 7 * 24 * time.Hour}
	other := Key{Source: events.CertificateSource{Namespace: "ns", Secret: "s", Key: "tls.crt"}, Serial: "0b"}
	same := Key{Source: events.CertificateSource{Namespace: "ns", Secret: "s", Key: "tls.crt"}, Serial: "0a"}
	if EventID(k, th) != EventID(same, th) {
		t.Error("same fact, different ids")
	}
	if EventID(k, th) == EventID(other, th) {
		t.Error("different serials share an id")
	}
	if EventID(k, th) == EventID(k, Threshold{Name: Expired}) {
		t.Error("different thresholds share an id")
	}
	if got := DaysLeft(time.Unix(0, 0).Add(36*time.Hour), time.Unix(0, 0)); got != 1.5 {
		t.Errorf("DaysLeft = %v, want 1.5", got)
	}
}
