// Package statecodec writes and reads the correlator's stored state: a
// model.State as the JSON encoding/json writes for it, byte for byte, by
// hand-written appenders that reuse what did not change since the last
// write (Codec.Encode), compressed with S2 (Compress), and read back with
// encoding/json/v2 (Decode). The engine stores the result in JetStream KV;
// `stateguardctl status` and the query API show it decoded.
package statecodec
