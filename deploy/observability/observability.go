// Package observability holds Joinery's Prometheus and Grafana
// configuration (prometheus.yml, alerts.yml, grafana/) and the checks that
// keep it loadable: alert rules parsed by Prometheus's own rule parser,
// the dashboard's JSON and datasource, and the names of every metric the
// rules and panels use, which internal/metrics' integration test compares
// with what the worker, intake and inbox really export.
package observability

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// DatasourceUID is the uid of the provisioned Prometheus datasource; every
// panel and target of the dashboard names it.
const DatasourceUID = "joinery-prometheus"

// Synthetic are series Prometheus makes itself, not any Joinery process.
var Synthetic = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// Rules parses alerts.yml in dir the way Prometheus loads rule files
// (templates and PromQL checked) and returns its groups.
func Rules(dir string) (*rulefmt.RuleGroups, error) {
	groups, errs := rulefmt.ParseFile(filepath.Join(dir, "alerts.yml"), false, model.UTF8Validation)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return groups, nil
}

// Dashboard is the part of a Grafana dashboard the checks read.
type Dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []Panel `json:"panels"`
}

// Panel is one dashboard panel.
type Panel struct {
	ID         int         `json:"id"`
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *Datasource `json:"datasource"`
	Targets    []Target    `json:"targets"`
}

// Datasource names a Grafana datasource.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
}

// LoadDashboard reads grafana/dashboards/joinery.json in dir, refusing
// unknown structure only where it matters: it must be JSON, and every
// query panel and target must use the provisioned datasource.
func LoadDashboard(dir string) (Dashboard, error) {
	b, err := os.ReadFile(filepath.Join(dir, "grafana", "dashboards", "joinery.json"))
	if err != nil {
		return Dashboard{}, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return Dashboard{}, fmt.Errorf("joinery.json: %w", err)
	}
	var bad []error
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			bad = append(bad, fmt.Errorf("panel id %d used twice", p.ID))
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			bad = append(bad, fmt.Errorf("panel %q has no query", p.Title))
		}
		for _, ds := range append([]*Datasource{p.Datasource}, targetsDS(p)...) {
			if ds == nil || ds.UID != DatasourceUID || ds.Type != "prometheus" {
				bad = append(bad, fmt.Errorf("panel %q: datasource must be the provisioned prometheus %q", p.Title, DatasourceUID))
				break
			}
		}
	}
	return d, errors.Join(bad...)
}

func targetsDS(p Panel) []*Datasource {
	var out []*Datasource
	for _, t := range p.Targets {
		out = append(out, t.Datasource)
	}
	return out
}

// grafanaVars are the Grafana variables the dashboard may use in PromQL,
// replaced by a duration so that the parser can check the query.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// Metrics parses expr and returns the metric names it selects.
func Metrics(expr string) ([]string, error) {
	e, err := parser.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel {
						name = m.Value
					}
				}
			}
			if name != "" {
				names = append(names, name)
			}
		}
		return nil
	})
	return names, nil
}

// MetricNames returns every metric the alert rules and the dashboard use,
// each with where it is used, less the series Prometheus makes itself.
func MetricNames(dir string) (map[string]string, error) {
	groups, err := Rules(dir)
	if err != nil {
		return nil, err
	}
	used := map[string]string{}
	var bad []error
	add := func(expr, where string) {
		ns, err := Metrics(expr)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", where, err))
			return
		}
		for _, n := range ns {
			if !Synthetic[n] {
				used[n] = where
			}
		}
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			add(r.Expr, "alert "+r.Alert)
		}
	}
	d, err := LoadDashboard(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			add(t.Expr, "panel "+p.Title)
		}
	}
	return used, errors.Join(bad...)
}
