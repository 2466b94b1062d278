package config

import (
	"strings"
	"testing"
)

// The sticky cache bound (issue 12, P4) defaults to 1000 and refuses
// anything that is not a whole number of at least 1: a typo must stop the
// worker at start, not silently leave the cache at the SDK's 10,000 (or
// at zero, which would replay every joiner's history on every task).
func TestWorkerStickyCacheSize(t *testing.T) {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkerStickyCacheSize != 1000 {
		t.Fatalf("default: got %d, want 1000", c.WorkerStickyCacheSize)
	}
	c, err = Load(func(k string) string {
		if k == "JOINERY_WORKER_STICKY_CACHE_SIZE" {
			return "250"
		}
		return ""
	})
	if err != nil || c.WorkerStickyCacheSize != 250 {
		t.Fatalf("250: got %d, %v", c.WorkerStickyCacheSize, err)
	}
	for _, bad := range []string{"0", "-5", "1e3", "lots", "1000 "} {
		_, err := Load(func(k string) string {
			if k == "JOINERY_WORKER_STICKY_CACHE_SIZE" {
				return bad
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "JOINERY_WORKER_STICKY_CACHE_SIZE") {
			t.Errorf("%q: got %v, want an error naming the variable", bad, err)
		}
	}
}
