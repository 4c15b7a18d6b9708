// Package config loads the snapshotter's settings from flags and the
// environment (a flag wins over its environment variable) and validates them
// once, without touching the process environment.
package config
