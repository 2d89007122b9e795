package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// flaskSetup serves testdata/flask/app.wsgi at /flask from [daemon.flask]
// behind nginx (no buffering under /flask/stream).
func flaskSetup(t *testing.T) (*nginx, string) {
	t.Helper()
	dir := testDir(t)
	app := realAppCopy(t, "testdata/flask", filepath.Join(dir, "flask"))
	// One process: the API keeps its items in memory. Threads enough for a
	// held stream and the requests made meanwhile.
	conf := fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"

[embedded]
%s
[daemon.flask]
threads = 4
python-path = [%q]

[[script-alias]]
url = "/flask"
path = %q
process-group = "flask"
application-group = "%%{GLOBAL}"
`, python, workerUser(), app, filepath.Join(app, "app.wsgi"))
	s := startServer(t, dir, conf)
	return startNginx(t, dir, s.sock, nginxRealApp), dir
}

// flaskJSON does a request and decodes a JSON response into a map.
func flaskJSON(t *testing.T, method, u, ctype, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, raw := realAppDo(t, client, req)
	var got map[string]any
	if err := json.Unmarshal([]byte(raw), &got); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s = %d %s, not JSON: %q", method, u, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	return resp, got
}

func TestFlaskApp(t *testing.T) {
	n, dir := flaskSetup(t)
	api := n.url + "/flask/api/items"

	t.Run("JSONAPI", func(t *testing.T) {
		resp, got := flaskJSON(t, "GET", api, "", "")
		items, _ := got["items"].([]any)
		if resp.StatusCode != 200 || len(items) == 0 || items[0].(map[string]any)["name"] != "first" {
			t.Fatalf("GET items = %d %v", resp.StatusCode, got)
		}
		resp, got = flaskJSON(t, "POST", api, "application/json", `{"name": "widget \u00e9", "tags": ["a", "b"]}`)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 201 || got["name"] != "widget é" || !strings.HasPrefix(loc, "/flask/api/items/") {
			t.Fatalf("POST item = %d Location %q %v", resp.StatusCode, loc, got)
		}
		// url_for honours SCRIPT_NAME, relative and external.
		resp, got = flaskJSON(t, "GET", n.url+loc, "", "")
		if resp.StatusCode != 200 || got["name"] != "widget é" || got["url"] != n.url+loc || fmt.Sprint(got["tags"]) != "[a b]" {
			t.Fatalf("GET %s = %d %v", loc, resp.StatusCode, got)
		}
		// Errors are JSON too.
		for _, tt := range []struct {
			method, path, ctype, body string
			status                    int
		}{
			{"GET", "/flask/api/items/999999", "", "", 404},
			{"GET", "/flask/no/such/page", "", "", 404},
			{"POST", "/flask/api/items", "application/json", `{"name": `, 400},
			{"POST", "/flask/api/items", "application/json", `{"tags": []}`, 400},
			{"POST", "/flask/api/items", "text/plain", `{"name": "x"}`, 400},
			{"DELETE", "/flask/api/items", "", "", 405},
		} {
			resp, got := flaskJSON(t, tt.method, n.url+tt.path, tt.ctype, tt.body)
			if resp.StatusCode != tt.status || got["status"] != float64(tt.status) || got["error"] == "" {
				t.Errorf("%s %s %q = %d %v, want a JSON %d", tt.method, tt.path, tt.body, resp.StatusCode, got, tt.status)
			}
		}
	})

	t.Run("Streaming", func(t *testing.T) {
		// The generator yields its first chunk, then waits for the flag file
		// that this test creates only once it has read that chunk: the rest
		// says "released" only if the first chunk came through while the
		// generator was still running.
		flag := filepath.Join(dir, "stream-flag")
		resp, err := client.Get(n.url + "/flask/stream?name=abc&wait=8&flag=" + flag)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != -1 {
			t.Fatalf("GET /flask/stream = %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
		}
		r := bufio.NewReader(resp.Body)
		first, err := r.ReadString('\n')
		if err != nil || first != "first chunk for abc\n" {
			t.Fatalf("first chunk %q, %v", first, err)
		}
		// While the stream is held open, the other threads serve.
		if resp, _ := flaskJSON(t, "GET", api, "", ""); resp.StatusCode != 200 {
			t.Fatalf("GET items during the stream = %d", resp.StatusCode)
		}
		if err := os.WriteFile(flag, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(r)
		want := "chunk 0 of /stream\nchunk 1 of /stream\nchunk 2 of /stream\nreleased\n"
		if err != nil || string(rest) != want {
			t.Fatalf("rest of the stream %q (%v), want %q", rest, err, want)
		}
	})

	t.Run("FileUpload", func(t *testing.T) {
		data := make([]byte, 3<<20+777)
		rand.Read(data)
		sum := sha256.Sum256(data)
		ctype, body := realAppMultipart(t, map[string]string{"note": "three MiB"}, "data.bin", data)
		req, _ := http.NewRequest("POST", n.url+"/flask/upload", bytes.NewReader(body.Bytes()))
		req.Header.Set("Content-Type", ctype)
		resp, raw := realAppDo(t, client, req)
		var got struct {
			Filename, Sha256, Note string
			Size                   int
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(raw), &got) != nil {
			t.Fatalf("POST /flask/upload = %d %q", resp.StatusCode, raw)
		}
		if got.Sha256 != hex.EncodeToString(sum[:]) || got.Size != len(data) || got.Filename != "data.bin" || got.Note != "three MiB" {
			t.Fatalf("upload seen by Flask: %+v; want sha256 %x size %d", got, sum, len(data))
		}
		// No file part: a JSON 400.
		resp, m := flaskJSON(t, "POST", n.url+"/flask/upload", "application/x-www-form-urlencoded", "note=x")
		if resp.StatusCode != 400 || m["status"] != float64(400) {
			t.Errorf("upload without a file = %d %v", resp.StatusCode, m)
		}
	})
}
