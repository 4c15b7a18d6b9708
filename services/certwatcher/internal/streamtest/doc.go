// Package streamtest reads back, in tests, the events certwatcher stored in
// JetStream.
package streamtest
