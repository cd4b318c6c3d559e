package mercure

import "testing"

func TestEncodeEvent(t *testing.T) {
	rows := []struct {
		name string
		u    Update
		want string
	}{
		{"plain", Update{ID: "a", Data: "hello"}, "id: a\ndata: hello\n\n"},
		{"typed with retry", Update{ID: "urn:uuid:1", Data: "line1\nline2", Type: "book", Retry: 5000},
			"event: book\nretry: 5000\nid: urn:uuid:1\ndata: line1\ndata: line2\n\n"},
		{"empty data", Update{ID: "x"}, "id: x\ndata: \n\n"},
		{"empty line kept", Update{ID: "x", Data: "first\n\n    indented"}, "id: x\ndata: first\ndata: \ndata:     indented\n\n"},
		{"crlf and cr", Update{ID: "x", Data: "a\r\nb\rc\nd"}, "id: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n"},
		{"trailing newline", Update{ID: "x", Data: "a\n"}, "id: x\ndata: a\ndata: \n\n"},
		{"cr then lf separately counted once", Update{ID: "x", Data: "a\r\n\r\nb"}, "id: x\ndata: a\ndata: \ndata: b\n\n"},
		{"only newline", Update{ID: "x", Data: "\n"}, "id: x\ndata: \ndata: \n\n"},
		{"retry zero omitted, no event", Update{ID: `batch-7:["https://example.com/books/1"]`, Data: "{}"}, "id: batch-7:[\"https://example.com/books/1\"]\ndata: {}\n\n"},
	}
	for _, r := range rows {
		if got := string(EncodeEvent(&r.u)); got != r.want {
			t.Errorf("%s: got %q, want %q", r.name, got, r.want)
		}
	}
}

func TestNewUpdateEncodesOnce(t *testing.T) {
	u := NewUpdate("id", []string{"t"}, "d", "", 0, false)
	a, b := u.Encoded(), u.Encoded()
	if &a[0] != &b[0] {
		t.Fatal("Encoded must return the shared bytes, not a copy")
	}
}
