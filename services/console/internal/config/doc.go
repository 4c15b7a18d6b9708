// Package config loads and checks the console's settings from flags and
// the environment, once, without touching the process environment.
package config
