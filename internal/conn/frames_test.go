package conn

import "testing"

func TestChunkedEachFramesEveryMessage(t *testing.T) {
	msgs := [][]byte{[]byte(`{"a":1}`), []byte(`{}`)}
	if got, want := string(ChunkedEach("data: ", "\n\n")(nil, msgs)), "19\r\ndata: {\"a\":1}\n\ndata: {}\n\n\r\n"; got != want {
		t.Fatalf("chunk %q, want %q", got, want)
	}
	if got, want := string(RawEach("", "\n")(nil, msgs)), "{\"a\":1}\n{}\n"; got != want {
		t.Fatalf("raw %q, want %q", got, want)
	}
	if got := ChunkedEach("", "")(nil, nil); len(got) != 0 {
		t.Fatalf("no messages must write nothing (a zero chunk ends the body), got %q", got)
	}
}
