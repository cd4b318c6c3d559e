// Command callout is an example auth callout service for Herald.
//
// Herald POSTs a JWT (Content-Type: application/jwt) signed with
// client.callout.signing_secret; this service verifies it, decides who the
// client is from the token the client presented (here: a fixed table of
// session tokens), and answers with a JWT signed with its own secret, for the
// requesting node (aud = the request's iss) and the request's nonce.
//
//	HERALD_REQUEST_SECRET=... CALLOUT_ANSWER_SECRET=... go run ./examples/callout -listen 127.0.0.1:9100
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// sessions maps the tokens clients present to users and their grants.
var sessions = map[string]struct {
	user   string
	grants map[string][]string
}{
	"session-alice": {"alice", map[string][]string{"subscribe": {"chat:*", "#alice"}, "publish": {"chat:*"}, "history": {"chat:*"}, "presence": {"chat:*"}}},
	"session-bob":   {"bob", map[string][]string{"subscribe": {"chat:lobby"}}},
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9100", "address to listen on")
	flag.Parse()
	requestSecret := []byte(os.Getenv("HERALD_REQUEST_SECRET"))
	answerSecret := []byte(os.Getenv("CALLOUT_ANSWER_SECRET"))
	if len(requestSecret) == 0 || len(answerSecret) == 0 {
		log.Fatal("set HERALD_REQUEST_SECRET (client.callout.signing_secret) and CALLOUT_ANSWER_SECRET (client.callout.response_keys)")
	}
	http.HandleFunc("/callout", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		req := jwt.MapClaims{}
		// Only requests signed by Herald, for the callout, are answered.
		if _, err := jwt.ParseWithClaims(string(body), req, func(*jwt.Token) (any, error) { return requestSecret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("herald-callout"), jwt.WithExpirationRequired()); err != nil {
			http.Error(w, "bad request signature", http.StatusUnauthorized)
			return
		}
		answer := jwt.MapClaims{
			"aud":   req["iss"],   // the node that asked
			"nonce": req["nonce"], // this request, no other
			"exp":   time.Now().Add(time.Minute).Unix(),
		}
		tokens, _ := req["tokens"].(map[string]any) // needs client.callout.include_tokens
		tok, _ := tokens["connect.token"].(string)
		if s, ok := sessions[tok]; ok {
			answer["user"] = s.user
			answer["grants"] = s.grants
			answer["max_connections"] = 5
		} else {
			answer["deny"] = "unknown session"
		}
		signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, answer).SignedString(answerSecret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwt")
		io.WriteString(w, signed)
	})
	log.Printf("callout service on http://%s/callout", *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
