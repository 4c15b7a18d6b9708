// Package consistency is the snapshotter's hooks job: around each
// snapshot it runs the policy's pre hooks (quiesce, freeze) and post hooks
// (thaw) in the running pods that mount the claim, each bounded by its
// timeout and timed in metrics. Tolerated is the rule of which failures a
// snapshot survives; the commands themselves run through package hooks.
package consistency
