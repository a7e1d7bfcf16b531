package proficienthmac

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// A cachedSecret serves the secret from memory and refreshes it in the background when it is
// due, so no request ever waits on Secret Manager or the disk. A failed refresh keeps the last
// good value and is tried again after retryDelay.
type cachedSecret struct {
	source     secretSource
	ttl        time.Duration // 0: never refresh
	retryDelay time.Duration
	timeout    time.Duration // bounds one read
	now        func() time.Time
	log        *slog.Logger
	life       context.Context // reads in the background end with it

	state   atomic.Pointer[secretState]
	reading atomic.Pointer[chan struct{}] // the read under way, closed when it ends; nil when none is
}

type secretState struct {
	key *hmacKey  // nil until the first good read
	due time.Time // when to read again
}

func newCachedSecret(life context.Context, source secretSource, ttl time.Duration, log *slog.Logger) *cachedSecret {
	c := &cachedSecret{
		life:       life,
		source:     source,
		ttl:        ttl,
		retryDelay: min(ttl, 5*time.Second),
		timeout:    10 * time.Second,
		now:        time.Now,
		log:        log,
	}
	c.state.Store(&secretState{})
	return c
}

// startRead begins a read in the background unless one is under way. report is given the
// read's error (nil when it succeeded) before the read counts as ended.
func (c *cachedSecret) startRead(report func(error)) {
	done := make(chan struct{})
	if !c.reading.CompareAndSwap(nil, &done) {
		return
	}
	go func() {
		report(c.refresh(c.life))
		c.reading.Store(nil)
		close(done)
	}()
}

// key returns the cached secret, or nil while there is none. With none yet, a request waits
// for the read under way, if any (each read is bounded by timeout). key starts a refresh when
// one is due and none is under way.
func (c *cachedSecret) key(ctx context.Context) *hmacKey {
	s := c.state.Load()
	if done := c.reading.Load(); s.key == nil && done != nil {
		select {
		case <-*done:
		case <-ctx.Done():
		}
		s = c.state.Load()
	}
	if (s.key == nil || c.ttl > 0) && !c.now().Before(s.due) {
		c.startRead(func(err error) {
			if err != nil {
				c.logRefreshError(err)
			}
		})
	}
	return s.key
}

// refresh reads the source once. On failure the last good value stays.
func (c *cachedSecret) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	raw, err := c.source.readSecret(ctx)
	if err == nil {
		var secret []byte
		if secret, err = parseSecret(raw); err == nil {
			c.state.Store(&secretState{key: newHMACKey(secret), due: c.now().Add(c.ttl)})
			return nil
		}
	}
	c.state.Store(&secretState{key: c.state.Load().key, due: c.now().Add(c.retryDelay)})
	return err
}

func (c *cachedSecret) logRefreshError(err error) {
	if c.state.Load().key != nil {
		c.log.Warn("secret refresh failed; still using the last good value", "error", err.Error())
		return
	}
	c.log.Error("secret unavailable; answering 503 until it can be read", "error", err.Error())
}
