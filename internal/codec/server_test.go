package codec

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/joinery/joinery/internal/config"
)

const (
	testToken = "s3cret-operator-token"
	uiOrigin  = "http://127.0.0.1:8233"
)

func testServer(t *testing.T, c *Codec) *httptest.Server {
	t.Helper()
	h, err := NewServer(ServerOptions{
		Codec: c, Authorize: BearerTokens(testToken), AllowedOrigin: uiOrigin + "/", Namespace: "default",
		MaxBodyBytes: 64 << 10,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func payloadsJSON(t *testing.T, ps ...*commonpb.Payload) []byte {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)
	return b
}

func do(t *testing.T, method, url string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	require.NoError(t, err)
	return resp, b.Bytes()
}

func TestServerDecodesForAuthorisedCaller(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	srv := testServer(t, c)
	orig := joinerPayload(t)
	sealed := encodeOne(t, c, orig)

	resp, body := do(t, http.MethodPost, srv.URL+"/decode", payloadsJSON(t, sealed), map[string]string{
		"Authorization": "Bearer " + testToken, "Content-Type": "application/json",
		"Origin": uiOrigin, "X-Namespace": "default",
	})
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(body, &out))
	require.Len(t, out.Payloads, 1)
	require.Equal(t, orig.GetData(), out.Payloads[0].GetData())
	require.Contains(t, string(out.Payloads[0].GetData()), "Grace")
}

// The temporal CLI's --codec-endpoint and --codec-auth use the SDK's remote
// codec; it must work against this server in both directions.
func TestServerWithRemoteCodec(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	srv := testServer(t, c)
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL,
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+testToken)
			return nil
		},
	})
	enc, err := remote.Encode([]*commonpb.Payload{joinerPayload(t)})
	require.NoError(t, err)
	require.Equal(t, EncodingEncrypted, string(enc[0].GetMetadata()[MetadataEncoding]))
	local, err := c.Decode(enc)
	require.NoError(t, err)
	require.Equal(t, joinerPayload(t).GetData(), local[0].GetData())
	dec, err := remote.Decode(enc)
	require.NoError(t, err)
	require.Equal(t, joinerPayload(t).GetData(), dec[0].GetData())

	anon := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: srv.URL})
	_, err = anon.Decode(enc)
	require.ErrorContains(t, err, "Unauthorized")
}

func TestServerRefusals(t *testing.T) {
	c := newCodec(t, key(t, "k1"))
	srv := testServer(t, c)
	sealed := payloadsJSON(t, encodeOne(t, c, joinerPayload(t)))
	auth := "Bearer " + testToken
	for name, tc := range map[string]struct {
		method, path string
		body         []byte
		hdr          map[string]string
		want         int
	}{
		"no credentials":     {"POST", "/decode", sealed, map[string]string{"Content-Type": "application/json"}, 401},
		"wrong token":        {"POST", "/decode", sealed, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer nope"}, 401},
		"basic scheme":       {"POST", "/decode", sealed, map[string]string{"Content-Type": "application/json", "Authorization": "Basic " + testToken}, 401},
		"GET":                {"GET", "/decode", nil, map[string]string{"Authorization": auth}, 405},
		"PUT":                {"PUT", "/decode", sealed, map[string]string{"Authorization": auth, "Content-Type": "application/json"}, 405},
		"unknown path":       {"POST", "/other", sealed, map[string]string{"Authorization": auth, "Content-Type": "application/json"}, 404},
		"other origin":       {"POST", "/decode", sealed, map[string]string{"Authorization": auth, "Content-Type": "application/json", "Origin": "http://evil.test"}, 403},
		"other origin CORS":  {"OPTIONS", "/decode", nil, map[string]string{"Origin": "http://127.0.0.1:9999", "Access-Control-Request-Method": "POST"}, 403},
		"form post":          {"POST", "/decode", sealed, map[string]string{"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}, 415},
		"other namespace":    {"POST", "/decode", sealed, map[string]string{"Authorization": auth, "Content-Type": "application/json", "X-Namespace": "payroll"}, 403},
		"too big":            {"POST", "/decode", []byte(`{"payloads":[{"data":"` + strings.Repeat("A", 70<<10) + `"}]}`), map[string]string{"Authorization": auth, "Content-Type": "application/json"}, 413},
		"not payloads":       {"POST", "/decode", []byte(`[1,2]`), map[string]string{"Authorization": auth, "Content-Type": "application/json"}, 400},
		"tampered ciphertxt": {"POST", "/decode", bytes.Replace(sealed, []byte(`"data":"`), []byte(`"data":"AAAA`), 1), map[string]string{"Authorization": auth, "Content-Type": "application/json"}, 400},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := do(t, tc.method, srv.URL+tc.path, tc.body, tc.hdr)
			require.Equal(t, tc.want, resp.StatusCode, string(body))
			require.NotContains(t, string(body), "Grace", "a refusal never carries decoded data")
		})
	}
}

func TestServerPreflight(t *testing.T) {
	srv := testServer(t, newCodec(t, key(t, "k1")))
	resp, _ := do(t, http.MethodOptions, srv.URL+"/decode", nil, map[string]string{
		"Origin": uiOrigin, "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "content-type,x-namespace,authorization",
	})
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "POST", resp.Header.Get("Access-Control-Allow-Methods"))
	require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	for _, h := range []string{"Authorization", "Content-Type", "X-Namespace"} {
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), h)
	}
}

func TestNewServerNeedsAuthorizer(t *testing.T) {
	_, err := NewServer(ServerOptions{Codec: newCodec(t, key(t, "k1"))})
	require.Error(t, err)
	_, err = NewServer(ServerOptions{Authorize: BearerTokens("x")})
	require.Error(t, err)
	// No tokens configured: everything is refused, not everything allowed.
	r := httptest.NewRequest(http.MethodPost, "/decode", nil)
	r.Header.Set("Authorization", "Bearer ")
	_, err = BearerTokens()(r)
	require.ErrorIs(t, err, ErrUnauthenticated)
	_, err = BearerTokens("")(r)
	require.ErrorIs(t, err, ErrUnauthenticated)
}

func TestOrigin(t *testing.T) {
	o, err := Origin("HTTP://127.0.0.1:8233/namespaces/default")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8233", o)
	_, err = Origin("127.0.0.1:8233")
	require.Error(t, err)
}

func TestCheckListen(t *testing.T) {
	require.NoError(t, CheckListen("127.0.0.1:8094", DevToken))
	require.NoError(t, CheckListen("[::1]:8094", DevToken))
	require.NoError(t, CheckListen("localhost:8094", DevToken))
	require.Error(t, CheckListen("0.0.0.0:8094", DevToken))
	require.Error(t, CheckListen(":8094", DevToken), "an empty host listens everywhere")
	require.NoError(t, CheckListen("0.0.0.0:8094", "a-real-token"))
}

func TestDevTokenIsTheConfigDefault(t *testing.T) {
	cfg, err := config.Load(func(k string) string { return map[string]string{config.DevModeVar: "true"}[k] })
	require.NoError(t, err)
	require.Equal(t, DevToken, cfg.CodecToken)
	cfg, err = config.Load(func(string) string { return "" })
	require.NoError(t, err)
	require.Empty(t, cfg.CodecToken, "outside development mode there is no default token")
	_, err = NewServerFromConfig(context.Background(), config.Config{CodecKeysFile: "x"}, nil)
	require.ErrorContains(t, err, "JOINERY_CODEC_TOKEN", "the codec server refuses to start without a token")
}
