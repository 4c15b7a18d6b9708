// Package pins applies pin and unpin requests (io.stateguard.snapshot.pin.
// requested.v1 and ...unpin.requested.v1) to VolumeSnapshots: a pin sets the
// label stateguard.io/pinned=true and the annotation
// stateguard.io/pinned-reason, which retention never deletes; an unpin clears
// both. Requests may arrive twice or out of order: each applied request
// records its event time in stateguard.io/pin-updated-at, and requests not
// newer than it are ignored, so every order converges on the newest request.
package pins
