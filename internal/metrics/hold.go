package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/joinery/joinery/workflows"
)

// Names of the blast-radius hold's gauges.
const (
	IntakeHeld          = "joinery_intake_held"
	IntakeHeldOldestAge = "joinery_intake_held_oldest_age_seconds"
	IntakeHoldWindow    = "joinery_intake_hold_window"
	IntakeHoldUp        = "joinery_intake_hold_up"
)

// HoldViewer reads the hold's state (internal/intake Hold.View).
type HoldViewer interface {
	View(ctx context.Context) (workflows.HoldView, error)
}

// HoldState exports the intake's blast-radius hold: how many starts and
// rescinds it holds for an operator, how long the oldest has waited, and
// how many of each the sliding window has admitted. It queries the hold
// workflow on an interval (Run) and answers scrapes from that snapshot.
type HoldState struct {
	Hold     HoldViewer
	Interval time.Duration
	Logger   *slog.Logger

	mu     sync.Mutex
	view   *workflows.HoldView
	up     bool
	descs  [4]*prometheus.Desc
	inited sync.Once
}

func (h *HoldState) init() {
	h.inited.Do(func() {
		h.descs = [4]*prometheus.Desc{
			prometheus.NewDesc(IntakeHeld, "Starts and rescinds the blast-radius guard holds for an operator, by action.", []string{"action"}, nil),
			prometheus.NewDesc(IntakeHeldOldestAge, "Seconds the oldest held item has waited (0 when nothing is held).", nil, nil),
			prometheus.NewDesc(IntakeHoldWindow, "Starts and rescinds admitted within the guard's sliding window, by action.", []string{"action"}, nil),
			prometheus.NewDesc(IntakeHoldUp, "1 when the last query of the hold workflow answered, else 0.", nil, nil),
		}
	})
}

// Describe implements prometheus.Collector.
func (h *HoldState) Describe(ch chan<- *prometheus.Desc) {
	h.init()
	for _, d := range h.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (h *HoldState) Collect(ch chan<- prometheus.Metric) {
	h.init()
	h.mu.Lock()
	v, up := h.view, h.up
	h.mu.Unlock()
	g := func(d *prometheus.Desc, val float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, val, labels...)
	}
	if up {
		g(h.descs[3], 1)
	} else {
		g(h.descs[3], 0)
	}
	held := map[string]int{"start": 0, "rescind": 0}
	oldest := 0.0
	if v != nil {
		for _, it := range v.Held {
			if it.Action == "start" || it.Action == "rescind" {
				held[it.Action]++
			}
			if age := v.Now.Sub(it.HeldAt).Seconds(); age > oldest {
				oldest = age
			}
		}
		g(h.descs[2], float64(v.StartsInWindow), "start")
		g(h.descs[2], float64(v.RescindsInWindow), "rescind")
	}
	for _, a := range []string{"start", "rescind"} {
		g(h.descs[0], float64(held[a]), a)
	}
	g(h.descs[1], oldest)
}

// Refresh queries the hold once.
func (h *HoldState) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := h.Hold.View(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		// Not started yet (no admission so far) or its worker is down:
		// the intake's starts wait for it either way.
		h.up = false
		return err
	}
	h.view, h.up = &v, true
	return nil
}

// Run refreshes now and every Interval (default 30s) until ctx ends.
func (h *HoldState) Run(ctx context.Context) {
	iv := h.Interval
	if iv <= 0 {
		iv = defaultInterval
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		if err := h.Refresh(ctx); err != nil && h.Logger != nil && ctx.Err() == nil {
			h.Logger.Debug("hold metrics: query failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
