package inbox

import (
	"sync"
	"time"
)

// throttle counts failed sign-ins per key ("user:<name>", "ip:<addr>") in a
// sliding window. A key over the limit is refused before the directory is
// asked, so a guessing loop costs the directory nothing and learns nothing.
// Memory is bounded: at most max keys, each with at most limit timestamps.
type throttle struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	max    int
	m      map[string][]time.Time
}

func newThrottle(limit int, window time.Duration, max int) *throttle {
	return &throttle{limit: limit, window: window, max: max, m: make(map[string][]time.Time)}
}

// allow says whether key may try now, and if not, how long until it may.
func (t *throttle) allow(key string, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.recent(key, now)
	if len(f) < t.limit {
		return true, 0
	}
	return false, f[0].Add(t.window).Sub(now)
}

// fail records a failed attempt for key.
func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.recent(key, now)
	if f == nil && len(t.m) >= t.max {
		t.evictLocked(now)
	}
	f = append(f, now)
	if len(f) > t.limit {
		f = f[len(f)-t.limit:]
	}
	t.m[key] = f
}

// reset forgets key's failures (a successful sign-in for a username).
func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, key)
}

// recent returns key's failures inside the window, dropping older ones.
func (t *throttle) recent(key string, now time.Time) []time.Time {
	f := t.m[key]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= t.window {
		i++
	}
	if i == len(f) {
		delete(t.m, key)
		return nil
	}
	f = f[i:]
	t.m[key] = f
	return f
}

// evictLocked makes room: first every key whose failures have aged out,
// then, if the table is still full, the key whose last failure is oldest.
func (t *throttle) evictLocked(now time.Time) {
	var oldest string
	var at time.Time
	for k, f := range t.m {
		if len(f) == 0 || now.Sub(f[len(f)-1]) >= t.window {
			delete(t.m, k)
			continue
		}
		if last := f[len(f)-1]; at.IsZero() || last.Before(at) {
			oldest, at = k, last
		}
	}
	if len(t.m) >= t.max {
		delete(t.m, oldest)
	}
}

func (t *throttle) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
