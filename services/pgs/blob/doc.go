// Package blob stores file contents by SHA-256, in one namespace per account: the Store
// interface (create, read at offsets, stat, delete by hash; no renames or listings relied on,
// so an S3-compatible store fits) and its filesystem implementation.
// It does not know deploys, manifests or quotas; its callers decide what to keep.
package blob
