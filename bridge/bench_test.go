package bridge

import (
	"io"
	"testing"
)

// BenchmarkRequest measures one small keep-alive request end to end over
// a unix socket pair.
func BenchmarkRequest(b *testing.B) {
	s, _ := testServer(b, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		io.WriteString(w, "Content-Type: text/plain\r\n\r\nok")
		return EndStatus{}
	}))
	client := serveConn(b, s)
	ps := []Param{{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", "/app"}, {"PATH_INFO", "/x"}, {"HTTP_HOST", "example.org"}}
	in := requestBytes(1, true, ps, nil)
	var resp [128]byte
	want := 8 + 32 + 8 + 16 // STDOUT "…ok" padded, empty STDOUT, END_REQUEST
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		client.Write(in)
		if _, err := io.ReadFull(client, resp[:want]); err != nil {
			b.Fatal(err)
		}
	}
}
