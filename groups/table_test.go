package groups

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestWriteTableGolden(t *testing.T) {
	c, dir := loadTree(t, map[string]string{
		"00.toml": routeConf + `
[[location]]
url = "/app"
application-group = "%{GLOBAL}"
`,
		"10-site1.toml": `
[vhost]
server-name = "www.site1.com"
port = 8080
process-group = "site1"

[daemon.site1]

[[script-alias]]
url = "/"
path = "$D/srv/app.wsgi"
application-group = "site1"
`,
	})
	// Rows with the temp dir spelled $D, so column widths do not depend on it.
	rows := c.tableRows()
	for i := range rows {
		rows[i].script = strings.ReplaceAll(rows[i].script, dir, "$D")
	}
	var buf bytes.Buffer
	writeRows(&buf, rows)
	got := buf.String()
	var direct bytes.Buffer
	c.WriteTable(&direct)
	if !strings.Contains(direct.String(), dir+"/srv/app.wsgi") {
		t.Errorf("WriteTable:\n%s", direct.String())
	}
	const golden = "testdata/table.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("WriteTable:\n%s\nwant:\n%s", got, want)
	}
}
