package gateway

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendFileMax is the most one sendfile call is asked for, as in the Go runtime's own loop.
const sendFileMax = 4 << 20

// sendFile sends remain bytes of f (-1: to its end) with sendfile from the file's offset, which
// moves on, as the connection's own ReadFrom does. Unlike that, it moves the write deadline on
// whenever a call moved bytes, so that each call may send all the socket takes and the response
// fails only once nothing moved for idle (nginx's send_timeout). Sent in chunks that each had to
// finish within the deadline, a 10 MB file took 160 calls and 1.7 times nginx's CPU. handled is
// false when the connection is not one for sendfile, or sendfile refused the pair before
// sending anything.
func (c *progressConn) sendFile(f *os.File, remain int64) (written int64, err error, handled bool) {
	sock, ok := c.Conn.(syscall.Conn)
	if !ok {
		return 0, nil, false
	}
	dst, err := sock.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	src, err := f.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	start := clock()
	refused := false // sendfile refused the pair before any byte
	for remain != 0 {
		if err := c.armWrite(start, false); err != nil {
			return written, err, true
		}
		ended := false // the file ended
		var callErr error
		readErr := src.Read(func(in uintptr) bool {
			writeErr := dst.Write(func(out uintptr) bool {
				for remain != 0 {
					n := sendFileMax
					if remain >= 0 && remain < int64(n) {
						n = int(remain)
					}
					k, e := unix.Sendfile(int(out), int(in), nil, n)
					if k > 0 {
						written += int64(k)
						if remain > 0 {
							remain -= int64(k)
						}
						c.moved()
					}
					switch {
					case e == unix.EINTR:
					case e == unix.EAGAIN:
						// Wait for room, under a deadline idle after the last movement.
						if callErr = c.armWrite(start, false); callErr != nil {
							return true
						}
						return false
					case e != nil:
						if written == 0 && (e == unix.EINVAL || e == unix.ENOSYS || e == unix.EOPNOTSUPP) {
							refused = true
						} else {
							callErr = os.NewSyscallError("sendfile", e)
						}
						return true
					case k == 0:
						ended = true
						return true
					}
				}
				return true
			})
			if callErr == nil {
				callErr = writeErr
			}
			return true
		})
		switch {
		case refused:
			return 0, nil, false
		case readErr != nil:
			return written, readErr, true
		case callErr != nil && errors.Is(callErr, os.ErrDeadlineExceeded) && c.resumes(callErr, &c.write, start):
			continue
		case callErr != nil:
			return written, callErr, true
		case ended:
			return written, nil, true
		}
	}
	return written, nil, true
}
