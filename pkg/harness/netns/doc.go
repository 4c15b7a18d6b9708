// Package netns gives a test network namespaces of its own: n namespaces,
// each with a veth pair whose other end is on a bridge in the test's own
// namespace, so processes run in them (Net.Command) reach one another and
// the test over real addresses, and a link set down (Net.Partition) cuts one
// off as a network partition would. Everything is removed when the test
// ends. It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and the ip command
// of iproute2; without them New fails naming why.
package netns
