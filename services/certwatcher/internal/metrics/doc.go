// Package metrics exports the certificates in the inventory twice: under
// stateguard's prefix (stateguard_certwatcher_cert_not_after, ..._read_errors)
// and under the metric and label names of x509-certificate-exporter, so
// dashboards and alerts written for it keep working: x509_cert_not_after,
// x509_cert_not_before, x509_cert_expired and x509_read_errors. Both are
// labelled secret_namespace, secret_name, secret_key (or filename,
// filepath), serial_number, subject_* and issuer_*.
package metrics
