// Package sarif reads SARIF 2.1.0 logs as a stream and normalises each
// result. It walks the document once with a jsontext.Decoder (the
// upstream of encoding/json/v2), taking the few fields normalisation needs
// straight from the JSON text and skipping the rest undecoded, so its
// memory does not grow with the size of the log: a 1 GB log is read with
// the heap of a few results. It accepts what real tools write (results
// without a level, security-severity as a string, rules under
// tool.extensions, a UTF-8 BOM, several runs, field names in another case,
// invalid UTF-8) and counts a result with a malformed field as a result,
// reporting the field and its JSON path as an anomaly instead of rejecting
// the log. What is not SARIF 2.1.0 is an *Error naming the first problem
// and its JSON path.
package sarif
