//go:build !linux

package gateway

import "os"

// sendFile leaves files to ReadFrom's chunks: sendfile's behaviour differs between systems.
func (c *progressConn) sendFile(*os.File, int64) (int64, error, bool) { return 0, nil, false }
