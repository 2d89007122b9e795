package groups

import (
	"reflect"
	"testing"
)

// ConfiguredPaths lists what the workers of each process group open.
func TestConfiguredPaths(t *testing.T) {
	c, _ := loadTree(t, map[string]string{"00.toml": `
[daemon.site]
[daemon.other]

[[import-script]]
path = "/srv/site/app.wsgi"
process-group = "site"
application-group = "%{GLOBAL}"

[[script-alias]]
url = "/app"
path = "/srv/site/app.wsgi"
process-group = "site"
auth-user-script = "/srv/auth.wsgi"

[[script-alias]]
url = "/wsgi/"
path = "/srv/scripts/"

[[script-alias-match]]
regex = "^/m/([^/]+)"
path = "/srv/match/$1.wsgi"
process-group = "%{ENV:G}"

[[directory]]
path = "/home/bob/public_html"
extensions = [".wsgi"]
process-group = "other"
`})
	var got []string
	for _, p := range c.ConfiguredPaths() {
		s := p.Path + " " + groupLabel(p.ProcessGroup)
		if p.Dir {
			s += " dir"
		}
		if !p.Known {
			s += " unknown"
		}
		got = append(got, s)
	}
	want := []string{
		`/srv/site/app.wsgi "site"`, `/srv/auth.wsgi %{GLOBAL}`, `/srv/scripts %{GLOBAL} dir`,
		`/srv/match "%{ENV:G}" dir unknown`, `/home/bob/public_html "other" dir`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
