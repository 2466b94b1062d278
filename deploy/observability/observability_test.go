package observability

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestAlertRulesLoadAsPrometheusLoadsThem(t *testing.T) {
	groups, err := Rules(".")
	require.NoError(t, err)
	want := []string{"JoineryApprovalOverdue", "JoineryCompensationStuck", "JoineryRevocationOverdue",
		"JoineryIntakeHolding", "JoineryIntakeRejecting", "JoineryIntakeRowsRejected", "JoineryIntakeHoldFull",
		"JoineryWorkflowTaskScheduleToStartHigh"}
	seen := map[string]bool{}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "only alerting rules here")
			seen[r.Alert] = true
			require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], r.Alert)
			// Every alert points at a runbook entry that exists.
			rb := r.Annotations["runbook"]
			require.True(t, strings.HasPrefix(rb, "README.md#runbook-"), "%s: runbook %q", r.Alert, rb)
			anchor := strings.TrimPrefix(rb, "README.md#")
			require.True(t, strings.Contains(string(readme), `<a id="`+anchor+`"></a>`), "%s: README has no runbook entry %s", r.Alert, anchor)
		}
	}
	for _, w := range want {
		require.True(t, seen[w], "missing alert %s", w)
	}
}

// A rule file with a broken expression or template is refused: the check
// is not a formality.
func TestBrokenRulesAreRefused(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"bad promql":   "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m]) > 0\n",
		"bad template": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      summary: \"{{ $value \"\n",
		"bad for":      "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: soon\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "alerts.yml"), []byte(body), 0o600))
		_, err := Rules(dir)
		require.Error(t, err, name)
	}
}

func TestDashboardUsesTheProvisionedDatasource(t *testing.T) {
	d, err := LoadDashboard(".")
	require.NoError(t, err)
	require.Equal(t, "joinery-overview", d.UID)
	require.NotEmpty(t, d.Panels)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			_, err := Metrics(tg.Expr)
			require.NoError(t, err, "panel %q: %s", p.Title, tg.Expr)
		}
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
			Access               string
		} `yaml:"datasources"`
	}
	b, err := os.ReadFile(filepath.Join("grafana", "provisioning", "datasources", "prometheus.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &ds))
	require.Equal(t, 1, ds.APIVersion)
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, DatasourceUID, ds.Datasources[0].UID)
	require.Equal(t, "prometheus", ds.Datasources[0].Type)
	require.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL)

	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	b, err = os.ReadFile(filepath.Join("grafana", "provisioning", "dashboards", "joinery.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &prov))
	require.Len(t, prov.Providers, 1)
	require.Equal(t, "file", prov.Providers[0].Type)
	require.Equal(t, "/var/lib/grafana/dashboards", prov.Providers[0].Options.Path)
}

// A panel on another datasource (or none) would show nothing once
// provisioned: refused.
func TestDashboardOnAnotherDatasourceIsRefused(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "grafana", "dashboards"), 0o700))
	for _, body := range []string{
		`{"uid":"x","panels":[{"id":1,"type":"stat","title":"a","datasource":{"type":"prometheus","uid":"other"},"targets":[{"refId":"A","expr":"up","datasource":{"type":"prometheus","uid":"other"}}]}]}`,
		`{"uid":"x","panels":[{"id":1,"type":"stat","title":"a","targets":[{"refId":"A","expr":"up"}]}]}`,
		`{"uid":"x","panels":[`,
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "grafana", "dashboards", "joinery.json"), []byte(body), 0o600))
		_, err := LoadDashboard(dir)
		require.Error(t, err, body)
	}
}

func TestPrometheusScrapesWorkerIntakeAndInbox(t *testing.T) {
	var cfg struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	b, err := os.ReadFile("prometheus.yml")
	require.NoError(t, err)
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	_, err = time.ParseDuration(cfg.Global.ScrapeInterval)
	require.NoError(t, err)
	require.Equal(t, []string{"/etc/prometheus/alerts.yml"}, cfg.RuleFiles)
	jobs := map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		require.Len(t, sc.StaticConfigs, 1)
		require.Len(t, sc.StaticConfigs[0].Targets, 1)
		jobs[sc.JobName] = sc.StaticConfigs[0].Targets[0]
	}
	// The ports are the metrics listeners' defaults
	// (JOINERY_{WORKER,INTAKE,INBOX}_METRICS_ADDR), never the intake's or
	// the inbox's public ports.
	require.Equal(t, map[string]string{"joinery-worker": "worker:9464", "joinery-intake": "starter:9465", "joinery-inbox": "starter:9466"}, jobs)
}

func TestMetricNamesFromRulesAndPanels(t *testing.T) {
	used, err := MetricNames(".")
	require.NoError(t, err)
	for _, n := range []string{"joinery_compensations_stuck", "joinery_approvals_overdue", "joinery_intake_held", "joinery_intake_rows_total",
		"temporal_workflow_task_schedule_to_start_latency_seconds_bucket", "joinery_joiners_running"} {
		require.Contains(t, used, n)
	}
	require.NotContains(t, used, "up", "Prometheus's own series are not Joinery's to export")
	ns, err := Metrics(`sum by (step) (rate(joinery_step_duration_seconds_count{result="error"}[$__rate_interval]))`)
	require.NoError(t, err)
	require.Equal(t, []string{"joinery_step_duration_seconds_count"}, ns)
}
