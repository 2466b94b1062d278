package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"
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

// clusterForTest brings up (or reuses) the checkout's loopback cluster:
// `make test` starts it first; run alone, the test starts it itself.
func clusterForTest(t *testing.T) Cluster {
	t.Helper()
	repo, err := FindRepoDir()
	require.NoError(t, err)
	k := DefaultCluster(repo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := ClusterUp(ctx, k); err != nil {
		t.Fatalf("the Temporal cluster is needed and could not start: %v", err)
	}
	return k
}

// psqlTCP tries to sign in over TCP as user with password and run a query.
func psqlTCP(ctx context.Context, k Cluster, host, user, password string) error {
	cmd := exec.CommandContext(ctx, k.pgBin("psql"), "-X", "-w", "-h", host, "-p", strconv.Itoa(k.PGPort),
		"-U", user, "-d", "postgres", "-tAc", "SELECT 1")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=3"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// A local stranger reaching PostgreSQL over TCP gets nothing without the
// generated password: not as the superuser (who has no password at all),
// not as temporal with the sample config's temporal/temporal or a guess;
// the generated one works. Nothing listens beyond loopback.
func TestClusterRefusesStrangers(t *testing.T) {
	k := clusterForTest(t)
	ctx := context.Background()
	pw, err := os.ReadFile(k.pgPasswordFile())
	require.NoError(t, err)
	password := strings.TrimSpace(string(pw))

	require.NoError(t, psqlTCP(ctx, k, "127.0.0.1", "temporal", password), "the generated password signs in")
	for _, try := range []struct{ user, password string }{
		{"temporal", "temporal"}, {"temporal", ""}, {"temporal", password + "x"},
		{"postgres", ""}, {"postgres", "postgres"}, {"postgres", password},
	} {
		err := psqlTCP(ctx, k, "127.0.0.1", try.user, try.password)
		require.Error(t, err, "%s/%q must be refused", try.user, try.password)
		// Refused for the password (none given, or wrong), not for
		// anything incidental such as a refused connection.
		require.Regexp(t, `password authentication failed|no password supplied`, err.Error())
	}

	// The password is in the 0600 file only: not in any config file, not on
	// any process's command line.
	entries, err := os.ReadDir(k.configDir())
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(k.configDir(), e.Name()))
		require.NoError(t, err)
		require.NotContains(t, string(b), password, e.Name())
	}
	for name, pid := range ClusterPIDs(k) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		require.NoError(t, err)
		require.NotContains(t, string(cmdline), password, name)
	}

	// Every port of the cluster answers on loopback and on no other
	// address of this machine.
	var others []string
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			others = append(others, ipn.IP.String())
		}
	}
	ports := []int{k.PGPort}
	for _, n := range k.nodes() {
		ports = append(ports, n.grpc, n.member)
		if n.http != 0 {
			ports = append(ports, n.http)
		}
	}
	for _, p := range ports {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), 3*time.Second)
		require.NoError(t, err, "port %d on loopback", p)
		conn.Close()
		for _, ip := range others {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(p)), 3*time.Second)
			if err == nil {
				conn.Close()
			}
			require.Error(t, err, "port %d must not answer on %s", p, ip)
		}
	}
}

// Up on a running cluster reuses every process (same PIDs), and the
// namespace with every search attribute is served.
func TestClusterUpIsIdempotent(t *testing.T) {
	k := clusterForTest(t)
	before := ClusterPIDs(k)
	require.Len(t, before, 6, "postgres and five Temporal processes")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, err := ClusterUp(ctx, k)
	require.NoError(t, err)
	require.Equal(t, k.Address(), addr)
	require.Equal(t, before, ClusterPIDs(k))
	for name, err := range ClusterStatus(ctx, k) {
		require.NoError(t, err, name)
	}
	cl, err := k.client(ctx)
	require.NoError(t, err)
	defer cl.Close()
	sas, err := cl.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: TemporalNamespace})
	require.NoError(t, err)
	for _, sa := range SearchAttributes {
		require.Contains(t, sas.GetCustomAttributes(), sa[0])
	}
}
