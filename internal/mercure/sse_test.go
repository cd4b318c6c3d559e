package mercure

import (
	"testing"

	"github.com/heraldhub/herald/internal/broker"
)

func TestEncodeEvent(t *testing.T) {
	rows := []struct {
		name string
		u    broker.Publication
		want string
	}{
		{"plain", broker.Publication{ID: "a", Data: []byte("hello")}, "id: a\ndata: hello\n\n"},
		{"typed with retry", broker.Publication{ID: "urn:uuid:1", Data: []byte("line1\nline2"), Event: "book", Retry: 5000},
			"event: book\nretry: 5000\nid: urn:uuid:1\ndata: line1\ndata: line2\n\n"},
		{"empty data", broker.Publication{ID: "x"}, "id: x\ndata: \n\n"},
		{"empty line kept", broker.Publication{ID: "x", Data: []byte("first\n\n    indented")}, "id: x\ndata: first\ndata: \ndata:     indented\n\n"},
		{"crlf and cr", broker.Publication{ID: "x", Data: []byte("a\r\nb\rc\nd")}, "id: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n"},
		{"trailing newline", broker.Publication{ID: "x", Data: []byte("a\n")}, "id: x\ndata: a\ndata: \n\n"},
		{"cr then lf separately counted once", broker.Publication{ID: "x", Data: []byte("a\r\n\r\nb")}, "id: x\ndata: a\ndata: \ndata: b\n\n"},
		{"only newline", broker.Publication{ID: "x", Data: []byte("\n")}, "id: x\ndata: \ndata: \n\n"},
		{"retry zero omitted, no event", broker.Publication{ID: `batch-7:["https://example.com/books/1"]`, Data: []byte("{}")}, "id: batch-7:[\"https://example.com/books/1\"]\ndata: {}\n\n"},
	}
	for _, r := range rows {
		if got := string(EncodeEvent(&r.u)); got != r.want {
			t.Errorf("%s: got %q, want %q", r.name, got, r.want)
		}
	}
}
