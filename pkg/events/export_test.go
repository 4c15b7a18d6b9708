package events

import "context"

// HoldRoundsUntil makes b's rounds wait until n callers are queued.
func HoldRoundsUntil(b *Batcher, n int) { b.minQueued.Store(int64(n)) }

// PublishOneByOne and PublishAtomic store evs, all of one stream, the two
// ways an ordered run can go (BenchmarkOrderedRun): each once the one
// before is stored (sendEach), or as one atomic batch (storeAtomic).
func PublishOneByOne(c *Client, ctx context.Context, evs ...Event) error {
	out, err := c.prepare(ctx, evs)
	if err != nil {
		return err
	}
	return c.finish(out, c.sendEach(ctx, out, groupChains([]int{len(out)})))
}

func PublishAtomic(c *Client, ctx context.Context, evs ...Event) error {
	out, err := c.prepare(ctx, evs)
	if err != nil {
		return err
	}
	err = c.storeAtomic(ctx, out)
	errs := make([]error, len(out))
	for i := range errs {
		errs[i] = err
	}
	return c.finish(out, errs)
}
