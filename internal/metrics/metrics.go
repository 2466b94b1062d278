// Package metrics is Joinery's Prometheus instrumentation: the Temporal
// SDK's own metrics (through the SDK's OpenTelemetry contrib package and
// the OpenTelemetry Prometheus exporter), Joinery's gauges of joiner state
// (computed from Temporal visibility, never from workflow code), step
// latency, the intake's and the inbox's request outcomes, the blast-radius
// hold, and the reconciler's findings.
//
// Each process (worker, intake, inbox) serves its own registry on its own
// listener (JOINERY_*_METRICS_ADDR), apart from the ports people and the
// HR system reach: whoever can reach a metrics port can read counts, so
// nothing exported carries personal data — no names, usernames, e-mail
// addresses or HR IDs as labels or values. Labels take values from fixed
// vocabularies (stages, outcomes, activity names, routes) and anything else
// is folded into "other" — the Temporal SDK's workflow_type and
// activity_type too, whose values anyone who may start workflows chooses
// (BoundedHandler), so the number of series is bounded by Joinery's code,
// not by its callers.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// Path is where every Joinery process serves its metrics.
const Path = "/metrics"

// latencyBuckets (seconds) cover what Temporal and Joinery's steps take:
// from a few milliseconds (a poll answered at once, an LDAP search) to ten
// minutes (a Vault or HRIS call retried inside one attempt). The
// OpenTelemetry default buckets are made for milliseconds and would put
// every latency in the first bucket.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Registry is one process's metrics: a Prometheus registry with the Go
// runtime and process collectors, to which the process adds its own.
type Registry struct {
	reg      *prometheus.Registry
	provider *sdkmetric.MeterProvider
}

// NewRegistry returns a registry with the Go runtime and process metrics.
func NewRegistry() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{reg: reg}
}

// Registerer is where collectors are added.
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Gatherer reads every metric of the registry.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// TemporalHandler returns the metrics handler for the Temporal client and
// worker (client.Options.MetricsHandler): the SDK's metrics
// (temporal_workflow_completed_total, temporal_activity_execution_latency_seconds,
// temporal_workflow_task_schedule_to_start_latency_seconds, ...) exported
// into this registry. It is also what workflow.GetMetricsHandler hands to
// workflow code, which the SDK silences during replay. Call it once.
//
// Workflow and activity types outside JoineryVocabulary are exported as
// "other" (BoundedHandler says why: whoever may start workflows chooses
// those names).
func (r *Registry) TemporalHandler() (client.MetricsHandler, error) {
	return r.TemporalHandlerFor(JoineryVocabulary())
}

// TemporalHandlerFor is TemporalHandler for a process that registers the
// workflows and activities of v (a test worker, a benchmark).
func (r *Registry) TemporalHandlerFor(v Vocabulary) (client.MetricsHandler, error) {
	if r.provider != nil {
		return nil, errors.New("metrics: TemporalHandler called twice")
	}
	exp, err := otelprom.New(
		otelprom.WithRegisterer(r.reg),
		// One process, one job: target_info and the scope labels would
		// only add series that say "temporal-sdk-go" on every line.
		otelprom.WithoutTargetInfo(),
		otelprom.WithoutScopeInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("metrics: prometheus exporter: %w", err)
	}
	r.provider = sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exp),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: latencyBuckets}},
		)),
		sdkmetric.WithCardinalityLimit(cardinalityLimit),
	)
	return BoundedHandler(temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: r.provider.Meter("temporal-sdk-go"),
		// Monotonic counters export as Prometheus counters (_total), so
		// rate() and increase() work on them.
		UseMonotonicCounters: true,
		// The SDK must never panic a worker over a metric.
		OnError: func(error) {},
	}), v), nil
}

// Close flushes and stops the SDK metrics pipeline.
func (r *Registry) Close(ctx context.Context) error {
	if r.provider == nil {
		return nil
	}
	return r.provider.Shutdown(ctx)
}

// Handler serves the registry at Path, GET and HEAD only. Anything else is
// 404 or 405: the metrics port offers nothing but reading (no pprof, no
// admin). Scrapes are bounded in number and time, and the collectors
// answer from snapshots, so scraping in a loop cannot load Temporal.
func (r *Registry) Handler() http.Handler {
	prom := promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
		ErrorHandling:       promhttp.ContinueOnError,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if req.URL.Path != Path {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		prom.ServeHTTP(w, req)
	})
}

// Listen opens the metrics listener on addr.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// ListenOrLog opens the metrics listener on addr, or logs why it could not
// (naming the variable) and reports false. A metrics port that is taken —
// a second worker on one host, a test beside `make run` — must not stop
// the worker, the intake or the inbox from doing their work: Prometheus
// then sees the target down (the JoineryWorkerDown alert), which is the
// signal an operator needs. A malformed address is refused earlier, by
// configuration.
func ListenOrLog(addr, variable string, logger *slog.Logger) (net.Listener, bool) {
	ln, err := Listen(addr)
	if err != nil {
		if logger != nil {
			logger.Error("metrics not served: "+err.Error(), "variable", variable)
		}
		return nil, false
	}
	return ln, true
}

// Serve serves Handler on ln until ctx ends.
func (r *Registry) Serve(ctx context.Context, ln net.Listener, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           r.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("metrics listening", "addr", ln.Addr().String(), "path", Path)
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// Addr turns a configured metrics address into a listen address: "off"
// (or empty) turns the listener off.
func Addr(configured string) (addr string, on bool) {
	if configured == "" || configured == "off" {
		return "", false
	}
	return configured, true
}
