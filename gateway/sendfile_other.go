//go:build !linux

package gateway

import "io"

// sendFile leaves r to ReadFrom's chunks: sendfile's behaviour differs between systems.
func (c *progressConn) sendFile(io.Reader) (int64, error, bool) { return 0, nil, false }
