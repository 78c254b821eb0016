package cloudapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterSet keeps one token bucket per SecretId for one action. The set of
// SecretIds is the configured credentials (a request is limited only after
// it authenticated), so the map stays small and is never pruned.
type limiterSet struct {
	perSecond float64
	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
}

func newLimiterSet(perSecond float64) *limiterSet {
	return &limiterSet{perSecond: perSecond, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token for secretID. The burst equals one second's worth, so
// a client may spend its whole second at once but never more.
func (l *limiterSet) allow(secretID string, now time.Time) bool {
	l.mu.Lock()
	b, ok := l.buckets[secretID]
	if !ok {
		b = rate.NewLimiter(rate.Limit(l.perSecond), int(math.Ceil(l.perSecond)))
		l.buckets[secretID] = b
	}
	l.mu.Unlock()
	return b.AllowN(now, 1)
}

// nonceCache remembers the v1 requests (SecretId, Nonce, Timestamp,
// Signature) seen within the timestamp window, so a captured request cannot
// be replayed.
// TC3 has no nonce, and the SDKs sign identical requests made within one
// second identically, so TC3 is not checked.
type nonceCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// fresh records key and reports whether it was new.
func (c *nonceCache) fresh(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) > 100_000 {
		for k, at := range c.seen {
			if now.Sub(at) > 2*maxSkew {
				delete(c.seen, k)
			}
		}
	}
	if at, ok := c.seen[key]; ok && now.Sub(at) <= 2*maxSkew {
		return false
	}
	c.seen[key] = now
	return true
}
