package observability

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/stretchr/testify/require"
)

// fsample is one float sample.
type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }

// memSeries is a fixed set of series in memory: just enough storage for
// Prometheus's own PromQL engine to evaluate the alert rules.
type memSeries []storage.Series

func (m memSeries) Querier(int64, int64) (storage.Querier, error) { return m, nil }
func (m memSeries) Close() error                                  { return nil }
func (m memSeries) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}
func (m memSeries) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}
func (m memSeries) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
next:
	for _, s := range m {
		for _, mt := range ms {
			if !mt.Matches(s.Labels().Get(mt.Name)) {
				continue next
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels(), out[j].Labels()) < 0 })
	return &sliceSet{series: out, i: -1}
}

type sliceSet struct {
	series []storage.Series
	i      int
}

func (s *sliceSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *sliceSet) At() storage.Series                { return s.series[s.i] }
func (s *sliceSet) Err() error                        { return nil }
func (s *sliceSet) Warnings() annotations.Annotations { return nil }

// counter is a counter series growing by perMinute every minute for an
// hour, labelled name and kv pairs.
func counter(perMinute float64, name string, kv ...string) storage.Series {
	var samples []chunks.Sample
	for m := int64(0); m <= 60; m++ {
		samples = append(samples, fsample{t: m * 60_000, f: float64(m) * perMinute})
	}
	return storage.NewListSeries(labels.FromStrings(append([]string{"__name__", name}, kv...)...), samples)
}

// firing evaluates every alert rule of alerts.yml at the end of the hour
// over series and returns the alerts whose expression has a result (the
// rule's "for" aside: the series hold their rate for the whole hour).
func firing(t *testing.T, series ...storage.Series) map[string]bool {
	t.Helper()
	groups, err := Rules(".")
	require.NoError(t, err)
	eng := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: 10 * time.Second, LookbackDelta: 5 * time.Minute})
	at := time.UnixMilli(60 * 60_000)
	out := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			q, err := eng.NewInstantQuery(context.Background(), memSeries(series), nil, r.Expr, at)
			require.NoError(t, err, r.Alert)
			res := q.Exec(context.Background())
			require.NoError(t, res.Err, r.Alert)
			if v, ok := res.Value.(promql.Vector); ok && len(v) > 0 {
				out[r.Alert] = true
			}
			q.Close()
		}
	}
	return out
}

func alerts(m map[string]bool) []string {
	var out []string
	for a := range m {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

const (
	reqs = "joinery_intake_requests_total"
	rows = "joinery_intake_rows_total"
)

// The intake's alerts mean what they say now that rows count as rows: a
// bulk upload of mostly bad rows is one accepted request, and the row
// alert (not the request alert) fires; a full hold fires the hold-full
// alert, and neither the flood alert nor the Temporal-down alert; rows
// that could not be started inside a 200 bulk answer fire the error alert.
func TestIntakeAlertsOnRowsAndAFullHold(t *testing.T) {
	quiet := []storage.Series{
		counter(1, reqs, "route", "/hris/webhook", "outcome", "accepted"),
		counter(1, rows, "source", "webhook", "outcome", "started", "reason", "none"),
	}
	require.Empty(t, alerts(firing(t, quiet...)), "steady, healthy intake")

	badExport := append(quiet,
		counter(1, reqs, "route", "/joiners:bulk", "outcome", "accepted"),
		counter(60, rows, "source", "bulk", "outcome", "invalid", "reason", "none"),
		counter(30, rows, "source", "bulk", "outcome", "refused", "reason", "terminated"),
		counter(10, rows, "source", "bulk", "outcome", "started", "reason", "none"),
	)
	require.Equal(t, []string{"JoineryIntakeRowsRejected"}, alerts(firing(t, badExport...)),
		"90% of the bulk rows refused: the request is accepted, its rows are not")

	full := append(quiet,
		counter(1, reqs, "route", "/hris/webhook", "outcome", "hold_full"),
		counter(2, rows, "source", "webhook", "outcome", "hold_full", "reason", "none"),
		counter(1, reqs, "route", "/joiners", "outcome", "hold_full"),
		counter(1, rows, "source", "api", "outcome", "hold_full", "reason", "none"),
	)
	require.Equal(t, []string{"JoineryIntakeHoldFull"}, alerts(firing(t, full...)),
		"a full hold is neither a flood (throttled) nor Temporal being down (unavailable)")

	temporalDown := append(quiet,
		counter(1, reqs, "route", "/joiners:bulk", "outcome", "accepted"),
		counter(5, rows, "source", "bulk", "outcome", "error", "reason", "none"),
		counter(50, rows, "source", "bulk", "outcome", "started", "reason", "none"),
	)
	require.Equal(t, []string{"JoineryIntakeErrors"}, alerts(firing(t, temporalDown...)),
		"rows that could not be started inside a 200 bulk answer")

	flood := append(quiet, counter(10, reqs, "route", "/hris/webhook", "outcome", "throttled"))
	require.Equal(t, []string{"JoineryIntakeRejecting"}, alerts(firing(t, flood...)))
}
