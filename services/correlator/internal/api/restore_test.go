package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// TestOperatorRequestsARestore on a real engine and JetStream: an operator
// asks to restore the case study's incident; the correlator publishes
// restore.requested for the incident's restore point with the token's name
// as actor and answers the Restore's name; a retry publishes nothing new;
// bad requests are problem+json and publish nothing.
func TestOperatorRequestsARestore(t *testing.T) {
	h, client := liveAPI(t)
	if err := client.Publish(t.Context(), scenariotest.CaseStudy()...); err != nil {
		t.Fatal(err)
	}
	var open []Incident
	eventually(t, "the case study's incident is open with a restore point", func() bool {
		open = nil
		return get(t, h, "/v1/incidents?status=open", readTok, &open) == http.StatusOK && len(open) == 1 && len(open[0].RestorePoints) == 1
	})
	inc := open[0]
	point := inc.RestorePoints[0]

	for _, tt := range []struct {
		name, token, body, wantType string
		want                        int
	}{
		{"a read token", readTok, `{"incident_id": "` + inc.ID + `", "reason": "r"}`, "forbidden", http.StatusForbidden},
		{"no reason", operatorTok, `{"incident_id": "` + inc.ID + `"}`, "invalid-parameter", http.StatusBadRequest},
		{"neither incident nor namespace", operatorTok, `{"snapshot": "s", "reason": "r"}`, "invalid-parameter", http.StatusBadRequest},
		{"an unknown incident", operatorTok, `{"incident_id": "nope", "reason": "r"}`, "not-found", http.StatusNotFound},
		{"another namespace than the incident's", operatorTok, `{"incident_id": "` + inc.ID + `", "namespace": "other", "reason": "r"}`, "invalid-parameter", http.StatusBadRequest},
		{"a claim without restore point", operatorTok, `{"incident_id": "` + inc.ID + `", "pvc": "logs", "reason": "r"}`, "conflict", http.StatusConflict},
		{"a bad snapshot name", operatorTok, `{"namespace": "shop", "snapshot": "Not_A_Name", "reason": "r"}`, "invalid-parameter", http.StatusBadRequest},
	} {
		rr := post(t, h, "/v1/restores", tt.token, tt.body)
		var p service.Problem
		_ = json.Unmarshal(rr.Body.Bytes(), &p)
		if rr.Code != tt.want || p.Type != service.ProblemBase+tt.wantType || rr.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem+json of type %s", tt.name, rr.Code, rr.Body.String(), tt.want, tt.wantType)
		}
	}
	if n, _ := storedOf(t, client, events.TypeRestoreRequested); n != 0 {
		t.Fatalf("refused requests published %d restore.requested", n)
	}

	body := `{"incident_id": "` + inc.ID + `", "reason": "restore the data written before v2"}`
	var first RestoreAccepted
	for i := range 2 { // the second is a retry: same answer, no new event
		rr := post(t, h, "/v1/restores", operatorTok, body)
		if rr.Code != http.StatusAccepted {
			t.Fatalf("request %d: %d %s, want 202", i, rr.Code, rr.Body.String())
		}
		var got RestoreAccepted
		if err := json.Unmarshal(rr.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got
		} else if got.RequestID != first.RequestID || got.Restore != first.Restore || got.EventID != first.EventID {
			t.Errorf("retry answered %+v, first %+v", got, first)
		}
	}
	if first.Restore != events.RestoreName(first.RequestID) || first.Namespace != "shop" || first.Snapshot != point.Name || first.PVC != point.PVC ||
		first.IncidentID != inc.ID || first.Actor != "alice" {
		t.Errorf("answer %+v, want the restore point %s/%s of %s by alice", first, point.PVC, point.Name, inc.ID)
	}
	n, ev := storedOf(t, client, events.TypeRestoreRequested)
	if n != 1 {
		t.Fatalf("%d restore.requested stored after a retried request, want 1", n)
	}
	got, err := events.Decode[events.RestoreRequested](ev)
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestID != first.RequestID || got.Snapshot != point.Name || got.Reason != "restore the data written before v2" || ev.ID() != first.EventID {
		t.Errorf("restore.requested %+v (id %s), want request %s of %s", got, ev.ID(), first.RequestID, point.Name)
	}

	// Another snapshot, named by the operator: another request.
	rr := post(t, h, "/v1/restores", operatorTok, `{"namespace": "shop", "pvc": "db-data", "snapshot": "db-data-old", "reason": "by hand"}`)
	var other RestoreAccepted
	if err := json.Unmarshal(rr.Body.Bytes(), &other); err != nil || rr.Code != http.StatusAccepted {
		t.Fatalf("request without incident: %d %s", rr.Code, rr.Body.String())
	}
	if other.RequestID == first.RequestID || other.Snapshot != "db-data-old" {
		t.Errorf("request without incident %+v", other)
	}
}
