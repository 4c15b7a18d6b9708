// Package config loads and validates certwatcher's settings from flags and
// environment variables, in one place, without touching the process
// environment.
package config
