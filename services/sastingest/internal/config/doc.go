// Package config loads and validates sastingest's settings from flags and
// their environment variables, in one place, without touching the process
// environment (getenv is passed in).
package config
