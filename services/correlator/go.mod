module github.com/stateguard/stateguard/services/correlator

go 1.26.0

require github.com/stateguard/stateguard/pkg/events v0.0.0

replace github.com/stateguard/stateguard/pkg/events => ../../pkg/events
