package proficienthmac

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// withClock gives the handler's secret cache, and its file if it reads one, a clock the test
// moves, starting now.
func withClock(h *handler) *fakeClock {
	clock := &fakeClock{now: time.Now()}
	h.secret.now = clock.Now
	if f, ok := h.secret.source.(*fileSecret); ok {
		f.mu.Lock()
		f.now = clock.Now
		f.mu.Unlock()
	}
	return clock
}

// refreshNow moves the clock past the next due time, lets one request start the background
// refresh and waits for that refresh to end.
func refreshNow(t *testing.T, h *handler, clock *fakeClock, by time.Duration) {
	t.Helper()
	clock.advance(by)
	hmacFor(t, h)
	waitForRead(h)
}
