package intake

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Sources the intake rate-limits separately: one sender's burst must not
// starve another's (an Entra provisioning cycle must not hold up BambooHR
// webhooks).
const (
	SourceWebhook = "webhook"
	SourceAPI     = "api"
	SourceBulk    = "bulk"
	SourceSCIM    = "scim"
)

// Rate is a token bucket: Burst requests at once, refilled at PerSecond.
type Rate struct {
	PerSecond float64
	Burst     int
}

// DefaultRates are aligned with what real senders do. BambooHR delivers
// webhooks in batches and retries on failure; Entra's API-driven inbound
// provisioning sends bulk requests of at most 50 operations, a few per
// second at most; an HR import is a handful of uploads, not a stream.
var DefaultRates = map[string]Rate{
	SourceWebhook: {PerSecond: 10, Burst: 50},
	SourceAPI:     {PerSecond: 5, Burst: 20},
	SourceBulk:    {PerSecond: 0.2, Burst: 2},
	SourceSCIM:    {PerSecond: 2, Burst: 10},
}

// DefaultMaxBulkInFlight bounds the bulk uploads served at once: each holds
// a connection and BulkConcurrency starts for up to BulkTimeout.
const DefaultMaxBulkInFlight = 2

// bucket is one source's token bucket.
type bucket struct {
	rate   Rate
	tokens float64
	last   time.Time
}

// limiter holds one bucket per source: a fixed, small set, so its memory
// does not grow with the number of senders or requests.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

// take takes a token from source's bucket, or says how long until one is
// there.
func (l *limiter) take(source string, r Rate, now time.Time) (bool, time.Duration) {
	if r.PerSecond <= 0 || r.Burst <= 0 {
		return true, 0 // no limit configured for this source
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	b := l.buckets[source]
	if b == nil || b.rate != r {
		b = &bucket{rate: r, tokens: float64(r.Burst), last: now}
		l.buckets[source] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(r.Burst), b.tokens+el*r.PerSecond)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / r.PerSecond * float64(time.Second))
	return false, wait
}

func (s *Server) rate(source string) Rate {
	if r, ok := s.Rates[source]; ok {
		return r
	}
	return DefaultRates[source]
}

// allow takes a token for source; when there is none it answers 429 with
// Retry-After (whole seconds, rounded up) and returns false. scim answers
// in the SCIM error shape.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, source string, scim bool) bool {
	ok, wait := s.limits.take(source, s.rate(source), time.Now())
	if ok {
		return true
	}
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.logger().Warn("rate limited", "request_id", requestID(r.Context()), "source", source, "retry_after_s", secs)
	fe := fieldErr("rate", "too many %s requests; retry after %d s", source, secs)
	if scim {
		writeSCIMError(w, http.StatusTooManyRequests, "", fe)
	} else {
		writeError(w, http.StatusTooManyRequests, fe)
	}
	return false
}
