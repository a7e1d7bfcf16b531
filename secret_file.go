package proficienthmac

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"google.golang.org/api/option"
)

const envSecretFile = "PROFICIENT_HMAC_SECRET_FILE"

// secretInFile is PROFICIENT_HMAC_SECRET_FILE: a file holding the secret, such as a Cloud Run
// secret volume mount, read again each second, since a mount of :latest changes in place when
// the secret rotates.
var secretInFile = secretBackend{
	variable: envSecretFile,
	holds:    "a file holding it",
	refresh:  time.Second,
	open: func(_ context.Context, path string, _ []option.ClientOption) (secretSource, error) {
		return &fileSecret{path: path, now: time.Now}, nil
	},
	fix: "check the path: it must name a file holding the secret (a --update-secrets /path=SECRET:latest " +
		"volume mount); to give the value itself, use " + envSecret,
}

// fileSecret reads PROFICIENT_HMAC_SECRET_FILE. A file
// rewritten in place can be read half-written, and its writer may pause half-way, so a content is
// taken only once it has stood unchanged for settleTime: as the file's modification time shows
// (a file written before the instance started is taken at once), or as reads over that long
// find. Until then the last settled content stands; at start there is none, and requests get 503.
type fileSecret struct {
	path string
	now  func() time.Time

	mu        sync.Mutex
	seen      []byte    // what the last read found
	seenSince time.Time // since when reads have found it
	settled   []byte
}

// settleTime is how long a content must stand unchanged to be taken: longer than a writer that
// rewrites the file in place pauses.
const settleTime = 5 * time.Second

func (f *fileSecret) readSecret(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, modified, err := f.read()
	if err != nil {
		return nil, err
	}
	now := f.now()
	if !bytes.Equal(b, f.seen) {
		f.seen, f.seenSince = b, now
	}
	if now.Sub(modified) >= settleTime || now.Sub(f.seenSince) >= settleTime {
		f.settled = b
	}
	if f.settled == nil {
		return nil, fmt.Errorf("the file was modified %s ago; it is taken once it has stood unchanged for %s (replace it by a rename to avoid the wait)",
			now.Sub(modified).Round(time.Millisecond), settleTime)
	}
	return f.settled, nil
}

// read returns the file's content and its modification time, taken after the content was read:
// a write before or during the read shows in it.
func (f *fileSecret) read() ([]byte, time.Time, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return nil, time.Time{}, f.readError(err)
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxSecretFile+1))
	if err != nil {
		return nil, time.Time{}, f.readError(err)
	}
	if len(b) > maxSecretFile {
		return nil, time.Time{}, misconfiguredError{fmt.Errorf("the file is larger than 64 KiB, which no secret is (the variable holds %s)", describeValue(f.path))}
	}
	info, err := file.Stat()
	if err != nil {
		return nil, time.Time{}, f.readError(err)
	}
	return b, info.ModTime(), nil
}

// maxSecretFile bounds what is read of the file: an hsec_ secret is under a hundred bytes.
const maxSecretFile = 64 << 10

func (f *fileSecret) readError(err error) error {
	// Never the path itself: a secret pasted into the variable would be printed.
	return misconfiguredError{fmt.Errorf("the file cannot be read (%s; the variable holds %s)", fileProblem(err), describeValue(f.path))}
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
