// Package audittest runs a real correlator engine on a real JetStream over a
// list of events, for the audit's and the report's tests.
package audittest
