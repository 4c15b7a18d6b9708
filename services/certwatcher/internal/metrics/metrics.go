package metrics

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

// Labels are the label names of every certificate series, in order. Empty
// values are the same as absent labels to Prometheus.
var Labels = []string{
	"secret_namespace", "secret_name", "secret_key", "filename", "filepath",
	"serial_number",
	"subject_C", "subject_O", "subject_OU", "subject_CN",
	"issuer_C", "issuer_O", "issuer_OU", "issuer_CN",
}

// descs are the descriptors of one naming of the certificate series.
type descs struct {
	notAfter, notBefore, expired, expiresIn, err, readErrs *prometheus.Desc
}

// newDescs names the series prefix+X where x509-certificate-exporter names
// them x509_X.
func newDescs(prefix string) descs {
	src := []string{"secret_namespace", "secret_name", "secret_key", "filename", "filepath"}
	return descs{
		notAfter:  prometheus.NewDesc(prefix+"cert_not_after", "Indicates the certificate's not after timestamp", Labels, nil),
		notBefore: prometheus.NewDesc(prefix+"cert_not_before", "Indicates the certificate's not before timestamp", Labels, nil),
		expired:   prometheus.NewDesc(prefix+"cert_expired", "Indicates if the certificate is expired", Labels, nil),
		expiresIn: prometheus.NewDesc(prefix+"cert_expires_in_seconds", "Indicates the remaining time before the certificate's not after timestamp", Labels, nil),
		err:       prometheus.NewDesc(prefix+"cert_error", "Indicates whether the corresponding secret has read failure(s)", src, nil),
		readErrs:  prometheus.NewDesc(prefix+"read_errors", "Indicates the number of read failure(s)", nil, nil),
	}
}

func (d descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.notAfter, d.notBefore, d.expired, d.expiresIn, d.err, d.readErrs}
}

// namings are stateguard's own names (stateguard_certwatcher_*), then the
// x509-certificate-exporter names kept beside them so that its dashboards
// and alerts work unchanged.
var namings = []descs{newDescs("stateguard_certwatcher_"), newDescs("x509_")}

// Collector reads the inventory at each scrape.
type Collector struct {
	Store *inventory.Store
	Clock clock.PassiveClock
}

var _ prometheus.Collector = (*Collector)(nil)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range namings {
		for _, desc := range d.all() {
			ch <- desc
		}
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	now := c.Clock.Now()
	records := c.Store.All()
	for _, d := range namings {
		collect(ch, d, records, now)
	}
}

// collect sends one naming's series for records.
func collect(ch chan<- prometheus.Metric, d descs, records []inventory.Record, now time.Time) {
	errs := 0
	for _, r := range records {
		src := sourceLabels(r)
		if r.Err != nil {
			errs++
			ch <- prometheus.MustNewConstMetric(d.err, prometheus.GaugeValue, 1, src...)
			continue
		}
		ch <- prometheus.MustNewConstMetric(d.err, prometheus.GaugeValue, 0, src...)
		seen := map[string]bool{}
		for _, cert := range r.Chain {
			lv := certLabels(src, cert)
			id := cert.SerialNumber.String() + "\x00" + cert.Subject.String() + "\x00" + cert.Issuer.String()
			if seen[id] { // the same certificate twice in a bundle
				continue
			}
			seen[id] = true
			expired := 0.0
			if now.After(cert.NotAfter) {
				expired = 1
			}
			ch <- prometheus.MustNewConstMetric(d.notAfter, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), lv...)
			ch <- prometheus.MustNewConstMetric(d.notBefore, prometheus.GaugeValue, float64(cert.NotBefore.Unix()), lv...)
			ch <- prometheus.MustNewConstMetric(d.expired, prometheus.GaugeValue, expired, lv...)
			ch <- prometheus.MustNewConstMetric(d.expiresIn, prometheus.GaugeValue, cert.NotAfter.Sub(now).Seconds(), lv...)
		}
	}
	ch <- prometheus.MustNewConstMetric(d.readErrs, prometheus.GaugeValue, float64(errs))
}

func sourceLabels(r inventory.Record) []string {
	s := r.Source
	var file, path string
	if s.Path != "" {
		file, path = filepath.Base(s.Path), s.Path
	}
	return []string{s.Namespace, s.Secret, s.Key, file, path}
}

func certLabels(src []string, c *x509.Certificate) []string {
	lv := append(append([]string{}, src...), c.SerialNumber.String())
	lv = append(lv, nameLabels(c.Subject)...)
	return append(lv, nameLabels(c.Issuer)...)
}

func nameLabels(n pkix.Name) []string {
	first := func(v []string) string {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	return []string{first(n.Country), first(n.Organization), first(n.OrganizationalUnit), n.CommonName}
}
