package proficienthmac

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// fileSecret is PROFICIENT_HMAC_SECRET_FILE, such as a Cloud Run secret volume mount. A file
// rewritten in place can be read half-written, so a content is taken only once two reads in a
// row agree; until then the last settled content stands. At start, with none settled, the file
// is read twice at once.
type fileSecret struct {
	path string

	mu      sync.Mutex
	last    []byte // what the last read found
	settled []byte // what two reads in a row found
}

func (f *fileSecret) readSecret(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.read()
	if err == nil && f.last == nil { // the first read: read again at once to compare
		f.last = b
		b, err = f.read()
	}
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(b, f.last) {
		f.last = b
		if f.settled == nil {
			return nil, errors.New("the file changed between two reads (being written?); it is read again shortly")
		}
		return f.settled, nil // changing: wait for the next read to agree
	}
	f.settled = b
	return b, nil
}

func (f *fileSecret) read() ([]byte, error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		// Never the path itself: a secret pasted into the variable would be printed.
		return nil, misconfiguredError{fmt.Errorf("the file cannot be read (%s; the variable holds %s)", fileProblem(err), describeValue(f.path))}
	}
	return b, nil
}

// fileProblem is an os.ReadFile error without the path it carries.
func fileProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	return "unreadable"
}

var _ secretSource = (*fileSecret)(nil)
