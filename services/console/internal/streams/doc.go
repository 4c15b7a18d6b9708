// Package streams is the console's read-only view of the event streams:
// the pipeline's figures (events per stream, consumer lag, dead letters
// with their reasons), an index of the DECISION events of each incident seen since
// the console started (the recommendation's revisions, the restore's
// phases), and a live feed of every event for the pages' server-sent
// events. It never publishes, creates a consumer or changes a stream: its NATS user may only
// read (deploy/kustomize/base/nats/auth.conf, user CN=console).
package streams
