// Package kubewatch turns a Kubernetes watch into wake-ups of a reconcile
// loop: the controller's slots and the Restore executor's phases both wait
// on a timer or on a change of the objects they care about, whichever comes
// first.
package kubewatch
