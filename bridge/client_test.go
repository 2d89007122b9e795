package bridge

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yookoala/gofast"
)

// cgiHandler answers like a CGI script: headers from the params, the body
// echoed, a line on stderr.
func cgiHandler() HandlerFunc {
	return func(w ResponseWriter, r *Request) EndStatus {
		body, err := io.ReadAll(r.Stdin)
		if err != nil {
			return EndStatus{AppStatus: 1}
		}
		method := ""
		for _, p := range r.Params {
			if p.Name == "REQUEST_METHOD" {
				method = p.Value
			}
		}
		fmt.Fprintf(w, "Status: 201 Created\r\nContent-Type: text/plain\r\nX-Method: %s\r\n\r\n", method)
		fmt.Fprintf(w, "got %d bytes: %s", len(body), body)
		io.WriteString(w.Stderr(), "note from the app")
		return EndStatus{}
	}
}

func TestGofastClient(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, cgiHandler())
	path, _ := serveUnix(t, s)
	client, err := gofast.SimpleClientFactory(gofast.SimpleConnFactory("unix", path))()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i := 0; i < 3; i++ {
		hr := httptest.NewRequest("POST", "/x", strings.NewReader("payload"))
		req := gofast.NewRequest(hr)
		req.Params["REQUEST_METHOD"] = "POST"
		req.Params["CONTENT_LENGTH"] = "7"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		var errs bytes.Buffer
		if err := resp.WriteTo(rec, &errs); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusCreated || rec.Header().Get("X-Method") != "POST" ||
			rec.Body.String() != "got 7 bytes: payload" || errs.String() != "note from the app" {
			t.Errorf("request %d: %d %v %q %q", i, rec.Code, rec.Header(), rec.Body, errs.String())
		}
	}
	client.Close()
	s.Close()
}

func TestCgiFcgi(t *testing.T) {
	bin, err := exec.LookPath("cgi-fcgi")
	if err != nil {
		t.Skip("cgi-fcgi not installed (Debian package libfcgi-bin)")
	}
	s, _ := testServer(t, cgiHandler())
	path, _ := serveUnix(t, s)
	cmd := exec.Command(bin, "-bind", "-connect", path)
	cmd.Env = append(os.Environ(), "REQUEST_METHOD=PUT", "CONTENT_LENGTH=5", "SCRIPT_FILENAME="+filepath.Join(t.TempDir(), "x"))
	cmd.Stdin = strings.NewReader("hello")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cgi-fcgi: %v\n%s", err, out)
	}
	want := "Status: 201 Created\r\nContent-Type: text/plain\r\nX-Method: PUT\r\n\r\ngot 5 bytes: hello"
	if string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}
