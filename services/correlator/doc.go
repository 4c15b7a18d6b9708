// Command correlator joins SARIF, snapshot and certificate events into
// snapshot pins, restore recommendations, certificate rotation requests and
// incidents. See README.md.
package main
