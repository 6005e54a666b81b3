package auth

// TrustCacheLen reports how many entries and estimated bytes a's trust cache holds.
func TrustCacheLen(a *Authenticator) (entries, bytes int) {
	if a.cache == nil {
		return 0, 0
	}
	return a.cache.len()
}
