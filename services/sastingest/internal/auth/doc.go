// Package auth decides who may write: bearer tokens from a tokens file
// (each with the repositories it may upload for), and HMAC-SHA256 webhook
// signatures in GitHub's form (X-Hub-Signature-256) and the Standard
// Webhooks form (webhook-id, webhook-timestamp, webhook-signature) with a
// secret per provider. Both files are re-read when they change. Every
// comparison of a secret is constant-time, and no secret is ever logged.
package auth
