package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// rawWorkload is a non-human kind's `vault` section: what its AppRole may do.
type rawWorkload struct {
	Paths           []rawVaultPath `yaml:"paths"`
	TokenTTL        string         `yaml:"token_ttl"`
	TokenMaxTTL     string         `yaml:"token_max_ttl"`
	SecretIDNumUses *int           `yaml:"secret_id_num_uses"`
	SecretIDTTL     string         `yaml:"secret_id_ttl"`
	CIDRs           []string       `yaml:"cidrs"`
	WrapTTL         string         `yaml:"wrap_ttl"`
}

type rawVaultPath struct {
	Path         string   `yaml:"path"`
	Capabilities []string `yaml:"capabilities"`
}

type workloadSpec struct {
	paths []vaultPathSpec
	WorkloadPlan
}

type vaultPathSpec struct {
	segs []segment
	caps []string
}

// WorkloadPlan is what a non-human joiner's Vault AppRole gets: a token
// policy generated from its grants (path-scoped), token and SecretID limits,
// and the CIDRs its SecretID and tokens are bound to.
type WorkloadPlan struct {
	Grants          []VaultGrant  `json:"grants"`
	TokenTTL        time.Duration `json:"tokenTTL"`
	TokenMaxTTL     time.Duration `json:"tokenMaxTTL"`
	SecretIDNumUses int           `json:"secretIdNumUses"`
	SecretIDTTL     time.Duration `json:"secretIdTTL"`
	CIDRs           []string      `json:"cidrs,omitempty"`
	WrapTTL         time.Duration `json:"wrapTTL"`
}

// VaultGrant is one path the workload may use and how.
type VaultGrant struct {
	Path         string   `json:"path"`
	Capabilities []string `json:"capabilities"`
}

// PolicyHCL renders the grants as a Vault ACL policy: exactly these paths,
// nothing else (Vault denies by default).
func (w WorkloadPlan) PolicyHCL(comment string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", strings.ReplaceAll(comment, "\n", " "))
	for _, g := range w.Grants {
		caps := make([]string, len(g.Capabilities))
		for i, c := range g.Capabilities {
			caps[i] = fmt.Sprintf("%q", c)
		}
		fmt.Fprintf(&b, "path %q {\n  capabilities = [%s]\n}\n", g.Path, strings.Join(caps, ", "))
	}
	return b.String()
}

var (
	vaultCaps = []string{"create", "read", "update", "patch", "delete", "list"}
	// Paths a workload must never be granted, whatever the policy says.
	forbiddenVaultPrefixes = []string{"sys/", "auth/", "identity/", "cubbyhole/"}
	vaultPathRE            = regexp.MustCompile(`^[A-Za-z0-9_.{}+*/-]+$`)
)

func (b *builder) buildWorkload(path string, rw *rawWorkload) *workloadSpec {
	if rw == nil {
		return nil
	}
	ws := &workloadSpec{}
	if len(rw.Paths) == 0 {
		b.fail(path+".paths", "required: at least one path (a workload with no grants needs no AppRole)")
	}
	for i, rp := range rw.Paths {
		pp := fmt.Sprintf("%s.paths[%d]", path, i)
		switch {
		case rp.Path == "":
			b.fail(pp+".path", "required")
			continue
		case !vaultPathRE.MatchString(rp.Path) || strings.Contains(rp.Path, ".."):
			b.fail(pp+".path", "%q: use letters, digits, '/', '_', '-', '.', '+', '*' and {placeholders}", rp.Path)
			continue
		}
		for _, f := range forbiddenVaultPrefixes {
			if strings.HasPrefix(rp.Path, f) || rp.Path == "*" || rp.Path == "+" {
				b.fail(pp+".path", "%q: workloads may not be granted %s paths", rp.Path, strings.TrimSuffix(f, "/"))
			}
		}
		if strings.HasSuffix(rp.Path, "*") && strings.Count(rp.Path, "/") < 2 {
			b.fail(pp+".path", "%q: a glob needs at least two fixed path segments before it (least privilege)", rp.Path)
		}
		segs, err := parseTemplate(rp.Path, isWorkerField, "use a worker field such as {firstName} or {environment}")
		if err != nil {
			b.fail(pp+".path", "%v", err)
			continue
		}
		if len(rp.Capabilities) == 0 {
			b.fail(pp+".capabilities", "required: one or more of %s", strings.Join(vaultCaps, ", "))
		}
		for j, c := range rp.Capabilities {
			if !slices.Contains(vaultCaps, c) {
				b.fail(fmt.Sprintf("%s.capabilities[%d]", pp, j), "%q: want one of %s (sudo, root and deny are not for workloads)", c, strings.Join(vaultCaps, ", "))
			}
		}
		ws.paths = append(ws.paths, vaultPathSpec{segs: segs, caps: rp.Capabilities})
	}
	dur := func(field, s string, def time.Duration) time.Duration {
		if s == "" {
			return def
		}
		d, err := parseDuration(s)
		if err != nil || d <= 0 {
			b.fail(path+"."+field, "want a positive duration such as 1h or 7d, got %q", s)
			return def
		}
		return d
	}
	ws.TokenTTL = dur("token_ttl", rw.TokenTTL, time.Hour)
	ws.TokenMaxTTL = dur("token_max_ttl", rw.TokenMaxTTL, 4*time.Hour)
	ws.SecretIDTTL = dur("secret_id_ttl", rw.SecretIDTTL, 24*time.Hour)
	ws.WrapTTL = dur("wrap_ttl", rw.WrapTTL, 24*time.Hour)
	if ws.TokenMaxTTL < ws.TokenTTL {
		b.fail(path+".token_max_ttl", "%s is shorter than token_ttl %s", ws.TokenMaxTTL, ws.TokenTTL)
	}
	ws.SecretIDNumUses = 1
	if rw.SecretIDNumUses != nil {
		if *rw.SecretIDNumUses < 1 {
			b.fail(path+".secret_id_num_uses", "must be at least 1 (0 would mean unlimited uses)")
		} else {
			ws.SecretIDNumUses = *rw.SecretIDNumUses
		}
	}
	for i, c := range rw.CIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			b.fail(fmt.Sprintf("%s.cidrs[%d]", path, i), "%q is not a CIDR block", c)
			continue
		}
		ws.CIDRs = append(ws.CIDRs, c)
	}
	return ws
}

// workloadFor fills the workload's path templates for one joiner.
func (k kindSpec) workloadFor(w *Worker) *WorkloadPlan {
	if k.workload == nil {
		return nil
	}
	wp := k.workload.WorkloadPlan
	wp.CIDRs = slices.Clone(wp.CIDRs)
	wp.Grants = nil
	for _, p := range k.workload.paths {
		wp.Grants = append(wp.Grants, VaultGrant{Path: expandValueTemplate(p.segs, w), Capabilities: slices.Clone(p.caps)})
	}
	return &wp
}
