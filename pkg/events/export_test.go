package events

// HoldRoundsUntil makes b's rounds wait until n callers are queued.
func HoldRoundsUntil(b *Batcher, n int) { b.minQueued.Store(int64(n)) }
