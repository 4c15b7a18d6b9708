// Package correlator is the console's client of the correlator's HTTP API:
// the JSON shapes the console reads (a subset of what the API answers) and
// the operator writes it forwards. Every call carries the bearer token of
// the user's session, so the correlator decides what each user may do.
package correlator
