package gateway

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

func readFromTestFile(t *testing.T, size int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i % 251)
	}
	name := t.TempDir() + "/f"
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// TestReadFromFile: progressConn.ReadFrom sends a file or a range of one (as http.ServeContent
// does, through an io.LimitedReader) exactly, leaving the file's offset and the limit's N at
// what was sent, whether it ends, fails or is cut; a limit of zero or less sends nothing.
func TestReadFromFile(t *testing.T) {
	t.Run("negative limit sends nothing", func(t *testing.T) {
		f, _ := readFromTestFile(t, 1<<10)
		s, c := tcpPair(t, time.Second)
		lr := &io.LimitedReader{R: f, N: -1}
		n, err := s.ReadFrom(lr)
		if n != 0 || err != nil {
			t.Fatalf("ReadFrom of a limit of -1 = %d, %v; want 0, nil", n, err)
		}
		s.Close()
		got, _ := io.ReadAll(c)
		if len(got) != 0 {
			t.Fatalf("client got %d bytes", len(got))
		}
	})
	t.Run("range to a slow reader", func(t *testing.T) {
		f, data := readFromTestFile(t, 300<<10)
		s, c := smallBufferPair(t, 2*time.Second, 4<<10) // room for a busy machine: not about time
		const off, n = 12345, 200 << 10
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := readSlowly(c, 8<<10, 5*time.Millisecond)
		lr := &io.LimitedReader{R: f, N: n}
		w, err := s.ReadFrom(lr)
		if w != n || err != nil || lr.N != 0 {
			t.Fatalf("ReadFrom = %d, %v, N %d", w, err, lr.N)
		}
		pos, _ := f.Seek(0, io.SeekCurrent)
		if pos != off+n {
			t.Fatalf("offset %d, want %d", pos, off+n)
		}
		s.Close()
		if b := <-got; !bytes.Equal(b, data[off:off+n]) {
			t.Fatalf("client got %d bytes, differing", len(b))
		}
	})
	t.Run("a client reading nothing is cut after idle, offset and N agree", func(t *testing.T) {
		f, _ := readFromTestFile(t, 8<<20)
		const idle = 300 * time.Millisecond
		s, c := smallBufferPair(t, idle, 4<<10)
		_ = c
		lr := &io.LimitedReader{R: f, N: 8 << 20}
		start := time.Now()
		w, err := s.ReadFrom(lr)
		took := time.Since(start)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
		if took < idle || took > idle+5*time.Second {
			t.Fatalf("cut after %v, idle %v", took, idle)
		}
		pos, _ := f.Seek(0, io.SeekCurrent)
		if pos != w || lr.N != 8<<20-w {
			t.Fatalf("written %d, offset %d, N %d", w, pos, lr.N)
		}
	})
	t.Run("asked write deadline wins over movement", func(t *testing.T) {
		f, _ := readFromTestFile(t, 16<<20)
		s, c := smallBufferPair(t, cutIdle, 4<<10)
		go func() {
			buf := make([]byte, 1<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		s.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		cutBeforeIdle(t, s, f)
	})
	t.Run("a deadline set meanwhile ends a blocked send", func(t *testing.T) {
		f, _ := readFromTestFile(t, 8<<20)
		s, _ := smallBufferPair(t, cutIdle, 4<<10)
		time.AfterFunc(200*time.Millisecond, func() { s.SetWriteDeadline(time.Now()) })
		cutBeforeIdle(t, s, f)
	})
	t.Run("a file that shrinks ends the send short, no error", func(t *testing.T) {
		f, data := readFromTestFile(t, 4<<20)
		s, c := smallBufferPair(t, 2*time.Second, 4<<10)
		got := make(chan []byte, 1)
		go func() {
			time.Sleep(100 * time.Millisecond)
			os.Truncate(f.Name(), 1<<20)
			b, _ := io.ReadAll(c)
			got <- b
		}()
		lr := &io.LimitedReader{R: f, N: 4 << 20}
		w, err := s.ReadFrom(lr)
		if err != nil || w+lr.N != 4<<20 || w >= 4<<20 {
			t.Fatalf("written %d, err %v, N %d", w, err, lr.N)
		}
		s.Close()
		b := <-got
		if int64(len(b)) != w || !bytes.Equal(b, data[:w]) {
			t.Fatalf("client got %d bytes, written %d", len(b), w)
		}
	})
}

// cutIdle is the idle time of the connections cutBeforeIdle sends on.
const cutIdle = 10 * time.Second

// cutBeforeIdle sends f on s and fails unless a deadline cuts the send well before cutIdle.
func cutBeforeIdle(t *testing.T, s *progressConn, f *os.File) {
	t.Helper()
	start := time.Now()
	_, err := s.ReadFrom(f)
	if took := time.Since(start); !errors.Is(err, os.ErrDeadlineExceeded) || took > cutIdle/2 {
		t.Fatalf("err %v after %v", err, took)
	}
}
