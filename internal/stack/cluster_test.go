package stack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func testCluster(t *testing.T) Cluster {
	k := DefaultCluster(t.TempDir())
	k.StateDir = filepath.Join(t.TempDir(), "cluster")
	k.PGPort = 5439
	k.FrontendPort = 7333
	k.HistoryShards = 4
	return k
}

// Bad configuration is refused with the reason before anything is written:
// no state directory, no password, no process.
func TestClusterRefusesBadConfigAndChangesNothing(t *testing.T) {
	for name, mutate := range map[string]func(*Cluster){
		"too few shards":            func(k *Cluster) { k.HistoryShards = 3 },
		"dev server's port":         func(k *Cluster) { k.FrontendPort = 7233 },
		"history on the dev server": func(k *Cluster) { k.FrontendPort = 7232 },
		"postgres on a node's port": func(k *Cluster) { k.PGPort = 7335 },
		"Debian's postgres port":    func(k *Cluster) { k.PGPort = 5432 },
		"privileged port":           func(k *Cluster) { k.PGPort = 80 },
		"port out of range":         func(k *Cluster) { k.FrontendPort = 65500 },
	} {
		t.Run(name, func(t *testing.T) {
			k := testCluster(t)
			mutate(&k)
			_, err := ClusterUp(context.Background(), k)
			require.Error(t, err)
			require.Contains(t, err.Error(), "cluster:")
			_, statErr := os.Stat(k.StateDir)
			require.True(t, os.IsNotExist(statErr), "nothing may be written for a refused config")
		})
	}
	require.NoError(t, testCluster(t).Validate())
}

// Each process's config follows the server's development-postgres12.yaml:
// at least four shards, its own ports for its own service, everything on
// loopback, and no password in the file (it comes from the environment).
func TestClusterNodeConfigs(t *testing.T) {
	k := testCluster(t)
	k.HistoryShards = 8
	ports := map[int]string{}
	for _, n := range k.nodes() {
		text := k.nodeConfig(n)
		require.True(t, strings.HasPrefix(text, "# enable-template"), "the password is rendered from the environment")
		require.Contains(t, text, `{{ env "`+clusterPasswordEnv+`" }}`)
		var doc struct {
			Persistence struct {
				NumHistoryShards int `yaml:"numHistoryShards"`
				Datastores       map[string]struct {
					SQL struct {
						PluginName  string `yaml:"pluginName"`
						ConnectAddr string `yaml:"connectAddr"`
						User        string `yaml:"user"`
					} `yaml:"sql"`
				} `yaml:"datastores"`
			} `yaml:"persistence"`
			Services map[string]struct {
				RPC struct {
					GRPCPort        int  `yaml:"grpcPort"`
					MembershipPort  int  `yaml:"membershipPort"`
					HTTPPort        int  `yaml:"httpPort"`
					BindOnLocalHost bool `yaml:"bindOnLocalHost"`
				} `yaml:"rpc"`
			} `yaml:"services"`
			Global map[string]any `yaml:"global"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(text), &doc), n.name)
		require.Equal(t, 8, doc.Persistence.NumHistoryShards)
		require.Len(t, doc.Persistence.Datastores, 2)
		for _, ds := range doc.Persistence.Datastores {
			require.Equal(t, "postgres12", ds.SQL.PluginName)
			require.Equal(t, "127.0.0.1:5439", ds.SQL.ConnectAddr)
			require.Equal(t, "temporal", ds.SQL.User)
		}
		require.Len(t, doc.Services, 4, "frontend, history, matching, worker")
		for _, s := range doc.Services {
			require.True(t, s.RPC.BindOnLocalHost)
		}
		own := doc.Services[n.service].RPC
		require.Equal(t, n.grpc, own.GRPCPort, n.name)
		require.Equal(t, n.member, own.MembershipPort, n.name)
		for _, p := range []int{own.GRPCPort, own.MembershipPort} {
			require.NotContains(t, ports, p, "%s reuses %s's port %d", n.name, ports[p], p)
			ports[p] = n.name
		}
		require.NotContains(t, doc.Global, "pprof", "five processes cannot share one pprof port")
		require.NotContains(t, doc.Global, "metrics")
	}
	require.Len(t, ports, 10, "five processes, two ports each")
	require.Equal(t, "127.0.0.1:7333", k.Address())
	require.Contains(t, k.Env(), "JOINERY_TEMPORAL_ADDRESS=127.0.0.1:7333")
}

// The role password is generated once, 0600, and reused; it is never the
// well-known temporal/temporal of the server's sample config.
func TestClusterPasswordGeneratedOnce(t *testing.T) {
	k := testCluster(t)
	require.NoError(t, os.MkdirAll(k.StateDir, 0o755))
	pw, err := k.ensurePassword()
	require.NoError(t, err)
	require.Len(t, pw, 48)
	require.NotEqual(t, "temporal", pw)
	fi, err := os.Stat(k.pgPasswordFile())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	again, err := k.ensurePassword()
	require.NoError(t, err)
	require.Equal(t, pw, again)
	other := testCluster(t)
	require.NoError(t, os.MkdirAll(other.StateDir, 0o755))
	pw2, err := other.ensurePassword()
	require.NoError(t, err)
	require.NotEqual(t, pw, pw2, "each cluster gets its own")
}
