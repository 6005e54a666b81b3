package db

import (
	"context"
	"testing"
)

// TestStatementPreparedAcrossCloseIsNotKept: statements are prepared without holding the
// statement cache's lock, so Close can run while one is being prepared. That statement must
// not be kept in a cache that Close already emptied (nothing would ever close it) nor handed
// out as if the store were open.
func TestStatementPreparedAcrossCloseIsNotKept(t *testing.T) {
	st, err := Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*sqliteStore)
	closed := false
	s.afterPrepare = func() {
		if !closed {
			closed = true
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	}
	stmt, err := s.readStatement(context.Background(), sqliteAccessVersion)
	if err == nil {
		t.Errorf("a statement prepared while the store closed was handed out: %v", stmt)
	}
	s.stmtMu.Lock()
	n := len(s.prepared)
	s.stmtMu.Unlock()
	if n != 0 {
		t.Errorf("the closed store keeps %d prepared statements", n)
	}
	if !closed {
		t.Fatal("the statement was not prepared")
	}
}
