// Package dirwatch reads PEM certificates from directories given by
// --watch-dir and keeps them current with file-system notifications
// (fsnotify), plus an optional periodic rescan that catches what
// notifications miss (network file systems, kubelet's atomic symlink swaps).
package dirwatch
