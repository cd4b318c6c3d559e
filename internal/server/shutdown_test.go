package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/testutil"
)

// During the drain the listener still answers: /health says 503, and a
// publication is refused with 503 and a reason instead of being
// acknowledged and then lost with the connections that would receive it.
func TestShutdownDrainRefusesPublicationsAndHealth(t *testing.T) {
	srv := testutil.Start(t, nil)
	// A client that never answers the close frame keeps the drain going
	// for the close grace (a second).
	c := srv.Dial(t, nil)
	c.Connect(testutil.UserToken(t, "u"))
	c.Call("subscribe", map[string]any{"channel": "news"})
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()

	health := func() int {
		resp, err := http.Get("http://" + srv.Addr + "/health")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(3 * time.Second)
	for health() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/health never answered 503 during the drain")
		}
		time.Sleep(5 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+srv.Addr+"/api/publish", strings.NewReader(`{"channel":"news","data":{"late":true}}`))
	req.Header.Set("X-API-Key", testutil.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct {
			Code      int    `json:"code"`
			Message   string `json:"message"`
			Temporary bool   `json:"temporary"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !body.Error.Temporary || !strings.Contains(body.Error.Message, "shutting down") {
		t.Fatalf("publish during the drain: %d %+v, want 503 with the reason", resp.StatusCode, body)
	}
	if st, _, _ := srv.MercurePost(t, mbearer(testutil.PublisherToken(t, "*")), topics("news")); st != http.StatusServiceUnavailable {
		t.Fatalf("Mercure publish during the drain: %d, want 503", st)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown did not finish")
	}
}
