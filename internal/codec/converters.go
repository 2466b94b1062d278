package codec

import (
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// DataConverter returns the SDK's default converter wrapped with c, for code
// that handles sealed payloads without going through a client built by
// DialOption: replaying a history recorded without decryption
// (worker.WorkflowReplayerOptions), or decoding payloads fetched elsewhere.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter returns the failure converter that matches DialOption's
// failure encoding: message and stack trace travel in a payload sealed by c.
func FailureConverter(c *Codec) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          DataConverter(c),
		EncodeCommonAttributes: true,
	})
}
