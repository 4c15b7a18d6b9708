// Package config loads the correlator's settings once, from flags, the
// environment and the rules file (--config), and validates them.
package config
