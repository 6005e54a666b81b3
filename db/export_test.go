package db

// SetRevocationBound makes store s hold at most n revocations per account instead of
// MaxRevocations, so that the contract tests check the bound without writing 50,000 rows.
func SetRevocationBound(s Store, n int) {
	switch st := s.(type) {
	case *sqliteStore:
		st.maxRevocations = n
	case *postgresStore:
		st.maxRevocations = n
	}
}

// SetBetweenRevocationQueries has the SQLite store s run fn between FindRevocation's query for
// serial ranges and its lookup, where a concurrent change can fall.
func SetBetweenRevocationQueries(s Store, fn func()) {
	if st, ok := s.(*sqliteStore); ok {
		st.betweenRevocationQueries = fn
	}
}
