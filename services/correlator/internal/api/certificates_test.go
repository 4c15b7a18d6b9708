package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// rotationsStored returns the certificate.rotation.requested events the
// CERTIFICATE stream holds.
func rotationsStored(t *testing.T, c *events.Client) []events.CertificateRotationRequested {
	t.Helper()
	cons, err := c.JetStream().OrderedConsumer(t.Context(), events.StreamCertificate, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectOf(events.TypeCertificateRotationRequest)}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.CertificateRotationRequested
	for m := range batch.Messages() {
		ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()})
		if err != nil {
			t.Fatal(err)
		}
		req, err := events.Decode[events.CertificateRotationRequested](ev)
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID() != req.RequestID {
			t.Errorf("event id %s, request id %s: want the same", ev.ID(), req.RequestID)
		}
		out = append(out, req)
	}
	return out
}

// TestOperatorRotatesACertificate on a real engine and JetStream: GET
// /v1/certificates lists what certwatcher reported; a read token may not
// rotate (403); an operator token publishes certificate.rotation.requested
// for the current serial with the token's name as actor; a retry is stored
// once; an unknown Secret is 404; once the Secret holds a new certificate,
// a rotation is a new request.
func TestOperatorRotatesACertificate(t *testing.T) {
	h, client := liveAPI(t)
	far := scenariotest.T0.Add(80 * 24 * time.Hour)
	web := []events.ObjectRef{scenariotest.Workload("shop", "Deployment", "web")}
	if err := client.Publish(t.Context(), scenariotest.Cert("shop", "web-tls", "03", far, 80, web, nil), scenariotest.Cert("shop", "db-tls", "01", far, 80, nil, nil)); err != nil {
		t.Fatal(err)
	}
	var certs []Certificate
	eventually(t, "both certificates listed", func() bool {
		certs = nil
		return get(t, h, "/v1/certificates?namespace=shop", readTok, &certs) == http.StatusOK && len(certs) == 2
	})
	if certs[0].Secret != "db-tls" || certs[1].Secret != "web-tls" || certs[1].Serial != "03" || len(certs[1].Users.Workloads) != 1 {
		t.Errorf("certificates %+v, want db-tls and web-tls (serial 03, used by web)", certs)
	}
	if code := get(t, h, "/v1/certificates?namespace=Bad_NS", readTok, nil); code != http.StatusBadRequest {
		t.Errorf("a bad namespace filter: %d, want 400", code)
	}

	path := "/v1/certificates/shop/web-tls/rotate"
	if rr := post(t, h, path, readTok, `{}`); rr.Code != http.StatusForbidden {
		t.Fatalf("read token: %d %s, want 403", rr.Code, rr.Body.String())
	}
	if rr := post(t, h, "/v1/certificates/shop/nope/rotate", operatorTok, `{}`); rr.Code != http.StatusNotFound {
		t.Fatalf("unknown secret: %d %s, want 404", rr.Code, rr.Body.String())
	}
	if rr := post(t, h, path, operatorTok, `{"reason": "key copied to a laptop\u0007"}`); rr.Code != http.StatusBadRequest {
		t.Fatalf("control character in the reason: %d %s, want 400", rr.Code, rr.Body.String())
	}
	if got := rotationsStored(t, client); len(got) != 0 {
		t.Fatalf("refused requests stored %d rotation requests", len(got))
	}

	var first Rotation
	for range 2 { // the second is a retry
		rr := post(t, h, path, operatorTok, `{"reason": "key copied to a laptop"}`)
		if rr.Code != http.StatusAccepted {
			t.Fatalf("operator rotate: %d %s, want 202", rr.Code, rr.Body.String())
		}
		var rot Rotation
		if err := json.Unmarshal(rr.Body.Bytes(), &rot); err != nil {
			t.Fatal(err)
		}
		if first.EventID != "" && rot.EventID != first.EventID {
			t.Errorf("retry got id %s, first %s: want the same", rot.EventID, first.EventID)
		}
		first = rot
	}
	if first.Serial != "03" || first.Actor != "alice" || first.Reason != "key copied to a laptop" || first.RequestID != first.EventID {
		t.Errorf("rotation %+v, want serial 03 by alice with the reason", first)
	}
	got := rotationsStored(t, client)
	if len(got) != 1 || got[0].Actor != "alice" || got[0].Namespace != "shop" || got[0].Secret != "web-tls" {
		t.Fatalf("stored %+v, want one request for shop/web-tls by alice", got)
	}

	// certwatcher rotated it: the Secret holds serial 04.
	if err := client.Publish(t.Context(), scenariotest.Rotated("shop", "web-tls", "03", "04"), scenariotest.Cert("shop", "web-tls", "04", far.Add(time.Hour), 90, web, nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "serial 04 is the current certificate", func() bool {
		certs = nil
		get(t, h, "/v1/certificates?namespace=shop", readTok, &certs)
		for _, c := range certs {
			if c.Secret == "web-tls" && c.Serial == "03" && c.Rotated {
				return true
			}
		}
		return false
	})
	rr := post(t, h, path, operatorTok, ``)
	var second Rotation
	if err := json.Unmarshal(rr.Body.Bytes(), &second); err != nil || rr.Code != http.StatusAccepted {
		t.Fatalf("rotate again: %d %s", rr.Code, rr.Body.String())
	}
	if second.Serial != "04" || second.EventID == first.EventID || second.Reason != defaultRotateReason {
		t.Errorf("second rotation %+v, want serial 04, a new id, the default reason", second)
	}
}
