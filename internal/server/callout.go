package server

import (
	"fmt"
	"os"
	"time"

	"github.com/heraldhub/herald/internal/auth"
	"github.com/heraldhub/herald/internal/callout"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/metrics"
)

// buildCallout creates the signed auth callout, if enabled.
func buildCallout(cfg *config.Config, nodeID string, m *metrics.Metrics) (*callout.Caller, error) {
	co := &cfg.Client.Callout
	if !co.Enabled {
		return nil, nil
	}
	tok := config.Token{Keys: co.ResponseKeys}
	static, _ := keySpecs(&tok)
	keys, err := auth.LoadKeys(static, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("client.callout.response_keys (numbered from 0): %w", err)
	}
	return callout.New(callout.Config{
		Endpoint: co.Endpoint, Timeout: co.Timeout.D(), NodeID: nodeID,
		SigningSecret: []byte(co.SigningSecret), ResponseKeys: auth.NewKeySet(keys...),
		IncludeTokens: co.IncludeTokens, Headers: co.HTTPHeaders, Leeway: 5 * time.Second, Metrics: m,
	})
}
