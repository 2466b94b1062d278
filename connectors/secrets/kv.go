package secrets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// StoredSecret identifies one written version of a KV v2 secret.
type StoredSecret struct {
	// Path is the logical KV path, e.g. "joinery/joiners/200/initial-credential".
	Path string
	// Version is the KV v2 version the write created.
	Version int
}

// Handover describes a response-wrapped secret that was handed to someone.
// It is safe to record in workflow history: it never holds the wrapping
// token or the secret value, only what is needed to audit and revoke it.
type Handover struct {
	// Path is the logical KV path that was wrapped (for a wrapped AppRole
	// SecretID, the role's secret-id API path).
	Path string
	// Version is the KV v2 version that was wrapped (0 for a SecretID).
	Version int
	// WrapAccessor revokes the wrapping token (RevokeAccessor) without
	// knowing it.
	WrapAccessor string
	// WrapTTL is the wrapping token's lifetime.
	WrapTTL time.Duration
	// ExpiresAt is when the wrapping token stops being redeemable.
	ExpiresAt time.Time
	// SecretIDAccessor is the accessor of a wrapped AppRole SecretID (Vault
	// reports it as the wrap's wrapped_accessor); empty for KV handovers.
	SecretIDAccessor string
	// Accessors are the wrapping accessors of every handover of the same
	// secret (or role) recorded in its ledger, oldest first, this one
	// included: all but the last have been ended. Empty from Wrap alone.
	Accessors []string
}

// SecretMetadata is the KV v2 metadata of a path: never the values.
type SecretMetadata struct {
	// Path is the logical KV path.
	Path string
	// CurrentVersion is the latest version number; OldestVersion the oldest kept.
	CurrentVersion, OldestVersion int
	// CreatedTime and UpdatedTime are the path's creation and last write.
	CreatedTime, UpdatedTime time.Time
	// CustomMetadata holds the non-secret annotations written with Put.
	CustomMetadata map[string]string
	// Versions lists every version still known, oldest first.
	Versions []VersionMetadata
}

// VersionMetadata describes one version of a KV v2 secret.
type VersionMetadata struct {
	Version     int
	CreatedTime time.Time
	// DeletionTime is set when the version was (or is scheduled to be) soft-deleted.
	DeletionTime time.Time
	// Destroyed is true once the version's data is permanently gone.
	Destroyed bool
}

// Readable reports whether the version's data can still be read at now.
func (v VersionMetadata) Readable(now time.Time) bool {
	return !v.Destroyed && (v.DeletionTime.IsZero() || v.DeletionTime.After(now))
}

// Version returns the metadata of version n, if Vault still knows it.
func (m SecretMetadata) Version(n int) (VersionMetadata, bool) {
	for _, v := range m.Versions {
		if v.Version == n {
			return v, true
		}
	}
	return VersionMetadata{}, false
}

// Put writes data as a new KV v2 version at the logical path and merges
// metadata into the path's custom_metadata. metadata must not hold secrets:
// anyone allowed to list or audit the path can read it.
func (c *Client) Put(ctx context.Context, path string, data map[string]any, metadata map[string]string) (StoredSecret, error) {
	const op = "kv-put"
	if err := checkPath(path); err != nil {
		return StoredSecret{}, invalid(op, err.Error())
	}
	if len(data) == 0 {
		return StoredSecret{}, invalid(op, "no data to store at "+path)
	}
	var stored StoredSecret
	apiPath := c.kvPath("data", path)
	err := c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		s, err := vc.KVv2(c.cfg.KVMount).Put(ctx, path, data)
		if err != nil {
			return err
		}
		if s.VersionMetadata == nil {
			return connectors.Transient(system, op, TypeUnavailable, "Vault did not report the version written at "+apiPath, nil)
		}
		stored = StoredSecret{Path: path, Version: s.VersionMetadata.Version}
		return nil
	})
	if err != nil || len(metadata) == 0 {
		return stored, err
	}
	// custom_metadata lives on the metadata endpoint, so it is a second
	// request. If it fails the caller retries Put, which writes a new version:
	// harmless, and simpler than a half-done state to resume.
	custom := make(map[string]any, len(metadata))
	for k, v := range metadata {
		custom[k] = v
	}
	mdPath := c.kvPath("metadata", path)
	err = c.call(ctx, op, mdPath, func(ctx context.Context, vc *vault.Client) error {
		return vc.KVv2(c.cfg.KVMount).PatchMetadata(ctx, path, vault.KVMetadataPatchInput{CustomMetadata: custom})
	})
	if err != nil {
		return StoredSecret{}, err
	}
	return stored, nil
}

// Wrap reads one version of the secret at the logical path as a single-use
// response-wrapped token valid for ttl (X-Vault-Wrap-TTL): whoever redeems the
// token first (sys/wrapping/unwrap) gets the data, nobody can after. Version
// 0 means the current version; the Handover always names the concrete one.
func (c *Client) Wrap(ctx context.Context, path string, version int, ttl time.Duration) (string, Handover, error) {
	const op = "kv-wrap"
	if err := checkPath(path); err != nil {
		return "", Handover{}, invalid(op, err.Error())
	}
	if version < 0 {
		return "", Handover{}, invalid(op, fmt.Sprintf("invalid version %d of %s", version, path))
	}
	if err := checkWrapTTL(ttl); err != nil {
		return "", Handover{}, invalid(op, err.Error())
	}
	// Check the version first: Vault would happily wrap the 404 body of a
	// deleted version, handing someone a token that unwraps to nothing.
	md, found, err := c.Metadata(ctx, path)
	if err != nil {
		return "", Handover{}, err
	}
	if !found {
		return "", Handover{}, connectors.Permanent(system, op, TypeNotFound, "no secret at "+path, nil)
	}
	if version == 0 {
		version = md.CurrentVersion
	}
	if v, ok := md.Version(version); !ok || !v.Readable(c.now()) {
		return "", Handover{}, connectors.Permanent(system, op, TypeNotFound, fmt.Sprintf("version %d of %s is deleted, destroyed or unknown", version, path), nil)
	}
	apiPath := c.kvPath("data", path)
	req := vault.NewLogicalReadRequest(apiPath,
		url.Values{"version": {strconv.Itoa(version)}},
		http.Header{"X-Vault-Wrap-TTL": {wrapTTL(ttl)}})
	var sec *vault.Secret
	err = c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		var err error
		sec, err = vc.Logical().ReadWithRequest(ctx, req)
		return err
	})
	if err != nil {
		return "", Handover{}, err
	}
	return handover(op, path, version, apiPath, sec)
}

// handover extracts the wrapping token and its Handover from a wrapped
// response. A response that came back unwrapped is discarded: its data must
// not travel any further than this function.
func handover(op, path string, version int, apiPath string, sec *vault.Secret) (string, Handover, error) {
	if sec == nil {
		return "", Handover{}, connectors.Permanent(system, op, TypeNotFound, "nothing at "+apiPath, nil)
	}
	wi := sec.WrapInfo
	if wi == nil || wi.Token == "" || wi.Accessor == "" {
		return "", Handover{}, connectors.Permanent(system, op, TypeRejected, "Vault did not wrap the response from "+apiPath, nil)
	}
	ttl := time.Duration(wi.TTL) * time.Second
	return wi.Token, Handover{
		Path:         path,
		Version:      version,
		WrapAccessor: wi.Accessor,
		WrapTTL:      ttl,
		ExpiresAt:    wi.CreationTime.Add(ttl).UTC(),
		// For a SecretID Vault puts the secret_id_accessor here; for a KV
		// read it is empty.
		SecretIDAccessor: wi.WrappedAccessor,
	}, nil
}

// checkWrapTTL refuses TTLs Vault would reject or round to something else:
// whole seconds, at least one.
func checkWrapTTL(ttl time.Duration) error {
	if ttl < time.Second || ttl%time.Second != 0 {
		return fmt.Errorf("wrap TTL %s must be a whole number of seconds, at least 1s", ttl)
	}
	return nil
}

// wrapTTL formats a TTL for X-Vault-Wrap-TTL.
func wrapTTL(ttl time.Duration) string {
	return strconv.FormatInt(int64(ttl/time.Second), 10) + "s"
}

// Destroy permanently deletes the logical path: its metadata and every
// version. A path that does not exist counts as destroyed.
func (c *Client) Destroy(ctx context.Context, path string) error {
	const op = "kv-destroy"
	if err := checkPath(path); err != nil {
		return invalid(op, err.Error())
	}
	err := c.call(ctx, op, c.kvPath("metadata", path), func(ctx context.Context, vc *vault.Client) error {
		err := vc.KVv2(c.cfg.KVMount).DeleteMetadata(ctx, path)
		if statusCode(err) == http.StatusNotFound {
			return nil
		}
		return err
	})
	return err
}

// Metadata returns the KV v2 metadata of the logical path; found is false if
// the path does not exist.
func (c *Client) Metadata(ctx context.Context, path string) (SecretMetadata, bool, error) {
	const op = "kv-metadata"
	if err := checkPath(path); err != nil {
		return SecretMetadata{}, false, invalid(op, err.Error())
	}
	var md *vault.KVMetadata
	err := c.call(ctx, op, c.kvPath("metadata", path), func(ctx context.Context, vc *vault.Client) error {
		var err error
		md, err = vc.KVv2(c.cfg.KVMount).GetMetadata(ctx, path)
		if errors.Is(err, vault.ErrSecretNotFound) {
			md, err = nil, nil
		}
		return err
	})
	if err != nil || md == nil {
		return SecretMetadata{}, false, err
	}
	out := SecretMetadata{
		Path:           path,
		CurrentVersion: md.CurrentVersion,
		OldestVersion:  md.OldestVersion,
		CreatedTime:    md.CreatedTime,
		UpdatedTime:    md.UpdatedTime,
		CustomMetadata: make(map[string]string, len(md.CustomMetadata)),
	}
	for k, v := range md.CustomMetadata {
		out.CustomMetadata[k] = fmt.Sprint(v)
	}
	for _, v := range md.Versions {
		out.Versions = append(out.Versions, VersionMetadata{
			Version: v.Version, CreatedTime: v.CreatedTime, DeletionTime: v.DeletionTime, Destroyed: v.Destroyed,
		})
	}
	sort.Slice(out.Versions, func(i, j int) bool { return out.Versions[i].Version < out.Versions[j].Version })
	return out, true, nil
}
