// Package observe publishes io.stateguard.certificate.observed.v1:
// certwatcher's inventory, one event per certificate on first sight and
// whenever its users or its serial change, whatever its expiry, so that a
// key-exposure rotation never waits for an expiry threshold. Event ids are
// derived from the content (ContentID), so a resync of an unchanged
// certificate repeats its id.
package observe
