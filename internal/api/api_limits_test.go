package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/testutil"
)

// TestBroadcastChannelLimit: a broadcast names at most
// http_api.max_broadcast_channels channels; over it, error 107 names the limit.
func TestBroadcastChannelLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.HTTPAPI.MaxBroadcastChannels = 3
	srv := testutil.Start(t, cfg)
	many := func(n int) string {
		chs := make([]string, n)
		for i := range chs {
			chs[i] = fmt.Sprintf("bl%d", i)
		}
		b, _ := json.Marshal(map[string]any{"channels": chs, "data": map[string]any{"v": 1}})
		return string(b)
	}
	if res := result(t, srv, "broadcast", many(3)); len(res["responses"].([]any)) != 3 {
		t.Fatalf("broadcast to 3 channels: %v", res)
	}
	code, msg := apiError(t, srv, "broadcast", many(4))
	if code != 107 || !strings.Contains(msg, "broadcast names 4 channels; http_api.max_broadcast_channels is 3") {
		t.Fatalf("broadcast to 4 channels: %d %q", code, msg)
	}
	// Inside a batch too.
	m := call(t, srv, "batch", `{"commands":[{"broadcast":`+many(4)+`}]}`)
	if b, _ := json.Marshal(m); !strings.Contains(string(b), "http_api.max_broadcast_channels is 3") {
		t.Fatalf("batch broadcast over the limit: %s", b)
	}
	// The default is 1000.
	def := testutil.Start(t, testConfig())
	if code, msg := apiError(t, def, "broadcast", many(1001)); code != 107 || !strings.Contains(msg, "is 1000") {
		t.Fatalf("default limit: %d %q", code, msg)
	}
}

// TestUnknownMethodIsLogged: error 104 is logged with the method and the
// closest known name, and the client is told that name too.
func TestUnknownMethodIsLogged(t *testing.T) {
	t.Parallel()
	srv := testutil.Start(t, testConfig())
	r := send(t, srv, request{path: "/api/pubish", body: `{}`, headers: withKey(nil)})
	if r.status != 404 || !strings.Contains(string(r.body), `did you mean \"publish\"?`) {
		t.Fatalf("unknown method: %d %s", r.status, r.body)
	}
	call(t, srv, "batch", `{"commands":[{"histroy":{"channel":"x"}}]}`)
	logs := srv.Logs.String()
	for _, want := range []string{`msg="api request refused: unknown method" reason=method_not_found code=104 method=pubish did_you_mean=publish`,
		`msg="api request refused: unknown method in command 0" reason=method_not_found code=104 method=histroy did_you_mean=history`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %q:\n%s", want, logs)
		}
	}
}
