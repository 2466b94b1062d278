package codec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/joinery/joinery/internal/config"
)

// DevToken is JOINERY_CODEC_TOKEN's development-mode default, for the
// loopback dev stack only.
const DevToken = "dev-codec-token"

// NewServerFromConfig builds the codec endpoint from configuration: the keys
// (see FromConfig), the bearer token JOINERY_CODEC_TOKEN, the Web
// UI's origin from JOINERY_TEMPORAL_UI_URL and the namespace. The starter's
// codec-server command and the integration tests share it.
func NewServerFromConfig(ctx context.Context, cfg config.Config, logger *slog.Logger) (http.Handler, error) {
	if cfg.CodecToken == "" {
		return nil, errors.New("JOINERY_CODEC_TOKEN is empty: the codec server would refuse everyone")
	}
	c, err := FromConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("neither JOINERY_CODEC_KEYS_FILE nor JOINERY_CODEC_KEYS_VAULT_PATH is set: there is nothing to decode with")
	}
	return NewServer(ServerOptions{
		Codec:         c,
		Authorize:     BearerTokens(cfg.CodecToken),
		AllowedOrigin: cfg.TemporalUIURL,
		Namespace:     cfg.TemporalNamespace,
		Logger:        logger,
		// The Web UI can only carry a cookie, not our bearer token.
		BrowserLogin: true,
	})
}

// CheckListen refuses to serve the dev stack's well-known token on anything
// but a loopback address: anyone who can reach the port could read every
// joiner's personal data with it.
func CheckListen(addr, token string) error {
	if token != DevToken {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("JOINERY_CODEC_TOKEN is the dev default; set a real token to listen on %s", addr)
}
