package centrifuge_test

import (
	"strings"
	"testing"

	"github.com/heraldhub/herald/internal/testutil"
)

// Refusals that are not about tokens are logged with their code, and every
// disconnect with its code and reason.
func TestRefusalsAndDisconnectsAreLogged(t *testing.T) {
	srv := testutil.Start(t, nil)
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	if r := c.Call("subscribe", map[string]any{"channel": "nope:1"}); testutil.ErrorCode(r) != 102 {
		t.Fatalf("unknown namespace: %v", r)
	}
	if r := c.Call("history", map[string]any{"channel": "news", "since": map[string]any{"offset": 5, "epoch": "gone"}}); testutil.ErrorCode(r) != 112 {
		t.Fatalf("unrecoverable: %v", r)
	}
	c.Send(`not json`)
	if code, _ := c.ExpectClose(wait); code != 3501 {
		t.Fatalf("close %d", code)
	}
	waitFor(t, func() bool {
		logs := srv.Logs.String()
		return strings.Contains(logs, `msg="subscription refused"`) && strings.Contains(logs, `unknown namespace \"nope\"`) &&
			strings.Contains(logs, `msg="history refused"`) && strings.Contains(logs, "epoch") &&
			strings.Contains(logs, `msg=disconnect`) && strings.Contains(logs, "code=3501") && strings.Contains(logs, "undecodable frame")
	}, "the refusals and the disconnect in the log, with codes")
}
