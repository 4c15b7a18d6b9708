// Package pruning is the snapshotter's retention job: it applies a
// policy's retention (the pure plan of package retention) to the policy's
// VolumeSnapshots, claim by claim, and deletes what the plan drops — only
// if the snapshot is unchanged since it was listed, so a snapshot pinned
// meanwhile is never deleted. Pruner.Prune is one pass over one policy.
package pruning
