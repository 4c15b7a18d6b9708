// Package expiry holds the pure expiry math of certwatcher: thresholds such
// as 30d or expired, which of them a certificate has crossed at a given
// instant, which one to report, and the deterministic ids of the reports.
// Every function takes now as an argument; none reads the clock.
package expiry
