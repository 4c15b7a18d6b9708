// Package audit is the audit trail an auditor can check: Export lists every
// decision of the correlator and every operator action (resolve, dismiss,
// restore request, rotation request) with its causes, time, actor and the
// rules' version; Verify replays the input streams into a fresh correlator
// state in memory (the pure model, under the rules in force when each
// decision was made) and compares the decisions it derives with those
// published, reporting every difference with its event id.
//
// The streams are read by Read (jetstream.go, the package's one storage
// file, which also keeps the rules files by version and the reports in the
// Object Store); everything else is pure.
package audit
