package metrics

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the reconciler's metrics.
const (
	ReconcilerFindings = "joinery_reconciler_findings"
	ReconcilerLastRun  = "joinery_reconciler_last_run_timestamp_seconds"
)

// ReconcilerRecorder is what the reconciler reports after each pass: how
// many findings of each kind it made (kinds are categories such as
// "orphan-entry" or "unexpected-member", never identities), and when the
// pass ended. The reconciler calls it from an activity (which runs once
// per attempt) — never from workflow code, where a replay would report an
// old pass again.
type ReconcilerRecorder interface {
	RecordReconcile(findings map[string]int, at time.Time) error
}

// maxReconcilerKinds bounds the kinds label; kindRE keeps its values short
// category names.
const maxReconcilerKinds = 32

var kindRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// Reconciler implements ReconcilerRecorder with two gauges:
// joinery_reconciler_findings{kind} (the last pass's count per kind, plus
// kind="total") and joinery_reconciler_last_run_timestamp_seconds.
type Reconciler struct {
	mu       sync.Mutex
	findings *prometheus.GaugeVec
	lastRun  prometheus.Gauge
	kinds    map[string]bool
}

// NewReconciler registers the reconciler's gauges on reg.
func NewReconciler(reg prometheus.Registerer) (*Reconciler, error) {
	r := &Reconciler{
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ReconcilerFindings,
			Help: "Findings of the reconciler's last pass by kind; kind=\"total\" is their sum."}, []string{"kind"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{Name: ReconcilerLastRun,
			Help: "Unix time the reconciler's last pass ended (0: none since the worker started)."}),
		kinds: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{r.findings, r.lastRun} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	r.findings.WithLabelValues("total").Set(0)
	return r, nil
}

// RecordReconcile replaces the findings with one pass's. A kind that is not
// a short lower-case category name is refused and nothing is recorded, so
// a reconciler can never put a username or a DN into a label.
func (r *Reconciler) RecordReconcile(findings map[string]int, at time.Time) error {
	var bad []error
	total := 0
	for k, n := range findings {
		if !kindRE.MatchString(k) || k == "total" {
			bad = append(bad, fmt.Errorf("kind %q: want a lower-case category name (a-z, 0-9, -), not an identity", k))
		}
		if n < 0 {
			bad = append(bad, fmt.Errorf("kind %q: negative count %d", k, n))
		}
		total += n
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fresh := 0
	for k := range findings {
		if !r.kinds[k] {
			fresh++
		}
	}
	if len(r.kinds)+fresh > maxReconcilerKinds {
		bad = append(bad, fmt.Errorf("more than %d kinds of findings", maxReconcilerKinds))
	}
	if err := errors.Join(bad...); err != nil {
		return fmt.Errorf("metrics: reconciler findings: %w", err)
	}
	// Kinds a pass no longer reports drop to zero rather than vanish, so a
	// fixed problem shows as fixed.
	for k := range r.kinds {
		r.findings.WithLabelValues(k).Set(0)
	}
	for k, n := range findings {
		r.kinds[k] = true
		r.findings.WithLabelValues(k).Set(float64(n))
	}
	r.findings.WithLabelValues("total").Set(float64(total))
	r.lastRun.Set(float64(at.Unix()))
	return nil
}
