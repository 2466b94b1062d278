package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/joinery/joinery/workflows"
)

// BenchmarkJoinerEndToEnd measures one whole joiner on the real stack: HR
// record entered, joiner started, planned, approved by signal, username
// claimed in LDAP, four groups granted, credential issued in Vault and HR
// fields written back. Run with:
//
//	go test -run '^$' -bench JoinerEndToEnd -benchtime 20x ./internal/e2e
func BenchmarkJoinerEndToEnd(b *testing.B) {
	h := NewHarness(b)
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		// Distinct names: every iteration claims a first-choice username.
		id := h.Hire("Bench", fmt.Sprintf("Mark%d", rand.IntN(1e9)))
		b.StartTimer()
		start := time.Now()
		h.Start(id)
		h.ApproveWhenAsked(id)
		res, err := h.Result(id)
		if err != nil || res.Outcome != workflows.OutcomeCompleted {
			b.Fatalf("joiner %s: %v %+v", id, err, res)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/joiner")
}
