package api

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

const endpointEvents = "cloudevents"

// CloudEvents extension attributes that carry an upload's metadata.
const (
	ExtRepository  = "repository"
	ExtCommitSHA   = "commitsha"
	ExtRef         = "ref"
	ExtApp         = "app"
	ExtNamespace   = "namespace"
	ExtAppVersion  = "appversion"
	ExtImages      = "images"
	ExtCategory    = "category"
	ExtEnvironment = "environment"
)

func metadataOfEvent(ext func(string) string) ingest.Metadata {
	m := ingest.Metadata{
		Repository:  ext(ExtRepository),
		CommitSHA:   ext(ExtCommitSHA),
		Ref:         ext(ExtRef),
		App:         ext(ExtApp),
		Namespace:   ext(ExtNamespace),
		Version:     ext(ExtAppVersion),
		Category:    ext(ExtCategory),
		Environment: ext(ExtEnvironment),
	}
	for _, img := range strings.Split(ext(ExtImages), ",") {
		if img = strings.TrimSpace(img); img != "" {
			m.Images = append(m.Images, img)
		}
	}
	return m
}

// postCloudEvent takes a SARIF log as the data of a CloudEvent, in binary
// mode (ce-* headers, the body is the log and is streamed) or structured
// mode (application/cloudevents+json; the event is read whole, bounded by
// the body limit).
func (s *Server) postCloudEvent(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	bad := func(detail string) {
		s.done(endpointEvents, start, outcomeInvalid)
		writeProblem(w, r, Problem{Type: ProblemBase + "bad-cloudevent", Title: "Not an acceptable CloudEvent", Status: http.StatusBadRequest, Detail: detail})
	}
	switch cehttp.NewMessageFromHttpRequest(r).ReadEncoding() {
	case binding.EncodingBinary:
		ev := event.New()
		ev.SetSpecVersion(r.Header.Get("Ce-Specversion"))
		ev.SetID(r.Header.Get("Ce-Id"))
		ev.SetSource(r.Header.Get("Ce-Source"))
		ev.SetType(r.Header.Get("Ce-Type"))
		if err := ev.Validate(); err != nil {
			bad(err.Error())
			return
		}
		meta := metadataOfEvent(func(name string) string { return r.Header.Get("Ce-" + name) })
		if !s.authorize(w, r, endpointEvents, start, meta.Repository) {
			return
		}
		gzipped, ok := s.checkRequest(w, r, endpointEvents, start, &meta, s.opts.MaxBody)
		if !ok {
			return
		}
		_, _ = s.ingest(w, r, endpointEvents, start, meta, http.MaxBytesReader(w, r.Body, s.opts.MaxBody), gzipped)
	case binding.EncodingStructured:
		// Authorise before reading the body: the token decides whether
		// we read at all; the repository is checked once it is known.
		if !s.readable(r) {
			s.authorize(w, r, endpointEvents, start, "")
			return
		}
		if r.ContentLength > s.opts.MaxBody {
			s.fail(w, r, endpointEvents, start, &http.MaxBytesError{Limit: s.opts.MaxBody})
			return
		}
		cr := &countingReader{r: http.MaxBytesReader(w, r.Body, s.opts.MaxBody)}
		body, err := io.ReadAll(cr)
		s.opts.Metrics.bytes.WithLabelValues(endpointEvents).Add(float64(cr.n))
		if err != nil {
			s.fail(w, r, endpointEvents, start, err)
			return
		}
		var ev event.Event
		if err := ev.UnmarshalJSON(body); err != nil {
			bad(err.Error())
			return
		}
		if !sarifMediaType(ev.DataContentType()) {
			s.done(endpointEvents, start, outcomeUnsupported)
			writeProblem(w, r, Problem{Type: ProblemBase + "unsupported-media-type", Status: http.StatusUnsupportedMediaType,
				Detail: "datacontenttype must be application/sarif+json or application/json"})
			return
		}
		meta := metadataOfEvent(func(name string) string {
			v, _ := ev.Extensions()[name].(string)
			return v
		})
		if !s.authorize(w, r, endpointEvents, start, meta.Repository) {
			return
		}
		if err := meta.Validate(); err != nil {
			s.done(endpointEvents, start, outcomeInvalid)
			writeProblem(w, r, Problem{Type: ProblemBase + "bad-metadata", Title: "Bad upload metadata", Status: http.StatusBadRequest, Detail: err.Error()})
			return
		}
		_, _ = s.ingest(w, r, endpointEvents, start, meta, bytes.NewReader(ev.Data()), false)
	default:
		bad("not a CloudEvent: send ce-* headers (binary mode) or application/cloudevents+json (structured mode)")
	}
}
