package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func goodOptions() options {
	return options{backends: "dev,cluster", sequential: 20, burst: 100, activities: 12, concurrency: 16}
}

// Sizes and targets that cannot be measured, or that would point the
// bench (which signs approvals with the dev inbox key) at a server off this
// machine, are refused before anything starts.
func TestOptionsRefuseBadInput(t *testing.T) {
	require.NoError(t, goodOptions().validate())
	for name, mutate := range map[string]func(*options){
		"unknown backend":      func(o *options) { o.backends = "dev,prod" },
		"no backend":           func(o *options) { o.backends = " , " },
		"nothing to measure":   func(o *options) { o.sequential, o.burst = 0, 0 },
		"negative waiting":     func(o *options) { o.waiting = -1 },
		"huge burst":           func(o *options) { o.burst = 1_000_000 },
		"no activities":        func(o *options) { o.activities = 0 },
		"no concurrency":       func(o *options) { o.concurrency = 0 },
		"remote dev server":    func(o *options) { o.devAddress = "temporal.example.com:7233" },
		"public IP":            func(o *options) { o.devAddress = "192.0.2.2:7233" },
		"address without port": func(o *options) { o.devAddress = "127.0.0.1" },
	} {
		t.Run(name, func(t *testing.T) {
			o := goodOptions()
			mutate(&o)
			require.Error(t, o.validate())
		})
	}
	o := goodOptions()
	o.devAddress = "127.0.0.1:7433"
	require.NoError(t, o.validate())
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, pct(ds, 50))
	require.Equal(t, 99*time.Millisecond, pct(ds, 99))
	require.Equal(t, 100*time.Millisecond, pct(ds, 100))
	require.Equal(t, 7*time.Millisecond, pct([]time.Duration{7 * time.Millisecond}, 99))
	require.Zero(t, pct(nil, 50))
	require.Equal(t, "3-5", rangeInt([]int64{5, 3, 4}))
	require.Equal(t, "2.00×", ratio(4, 2))
	require.Equal(t, "-", ratio(4, 0))
}
