// Package natstest runs real NATS JetStream servers for tests, benchmarks
// and the local stack. The embedded server, the child-process server or
// cluster and the events clients are pkg/events/eventstest's (so pkg/events'
// own tests need not import pkg/harness); natstest adds a cluster whose
// servers each run in a network namespace of their own (RunNetnsCluster), so
// a test can partition or kill one.
package natstest
