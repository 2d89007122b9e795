package groups

import "testing"

const expandConf = `
[[script-alias]]
url = "/"
path = "$D/app.wsgi"

[[location]]
url = "/server"
application-group = "%{SERVER}"

[[location]]
url = "/host"
application-group = "%{HOST}"

[[location]]
url = "/global"
application-group = "%{GLOBAL}"

[[location]]
url = "/env"
application-group = "%{ENV:AG}"
callable-object = "%{ENV:CB}"

[[location]]
url = "/name"
application-group = "fixed"
`

func TestApplicationGroupExpansion(t *testing.T) {
	c, _ := loadTree(t, map[string]string{
		"00.toml":       expandConf,
		"10-site1.toml": "[vhost]\nserver-name = \"www.site1.com\"\nserver-alias = [\"site1.com\"]\nenv = { CTX = \"from-context\" }\n[[script-alias]]\nurl = \"/Mount\"\npath = \"$D/app.wsgi\"\n",
	}, "app.wsgi")
	osenv := map[string]string{"AG": "from-os", "CTX": "os-loses"}
	tests := []struct {
		name string
		p    params
		want string
	}{
		{"resource port 8080", params{"REQUEST_URI": "/Mount/X", "SERVER_NAME": "site1.com", "HTTP_HOST": "site1.com:8080"}, "www.site1.com:8080|/mount"},
		{"resource no port", params{"REQUEST_URI": "/Mount/X", "HTTP_HOST": "Site1.com"}, "www.site1.com|/mount"},
		{"resource port 80", params{"REQUEST_URI": "/Mount", "HTTP_HOST": "site1.com:80"}, "www.site1.com|/mount"},
		{"resource port 443", params{"REQUEST_URI": "/Mount", "HTTP_HOST": "site1.com:443"}, "www.site1.com|/mount"},
		{"resource merged slashes", params{"REQUEST_URI": "//Mount//x", "HTTP_HOST": "www.site1.com"}, "www.site1.com|/mount"},
		{"resource root mount", params{"REQUEST_URI": "/x", "SERVER_NAME": "other.org", "HTTP_HOST": "other.org:8080"}, "other.org:8080|"},
		{"resource server context name", params{"REQUEST_URI": "/x", "SERVER_NAME": "Other.org"}, "Other.org|"},
		{"server", params{"REQUEST_URI": "/server", "SERVER_NAME": "site1.com", "HTTP_HOST": "site1.com:8080"}, "www.site1.com:8080"},
		{"server no port", params{"REQUEST_URI": "/server", "SERVER_NAME": "site1.com"}, "www.site1.com"},
		{"host", params{"REQUEST_URI": "/host", "SERVER_NAME": "site1.com", "HTTP_HOST": "Site1.COM:8080"}, "site1.com:8080"},
		{"host absent", params{"REQUEST_URI": "/host", "SERVER_NAME": "site1.com"}, "www.site1.com"},
		{"global", params{"REQUEST_URI": "/global"}, ""},
		{"literal", params{"REQUEST_URI": "/name"}, "fixed"},
		{"env param", params{"REQUEST_URI": "/env", "AG": "from-param"}, "from-param"},
		{"env os", params{"REQUEST_URI": "/env"}, "from-os"},
		{"env recursion", params{"REQUEST_URI": "/env", "SERVER_NAME": "site1.com", "AG": "%{SERVER}"}, "www.site1.com"},
		{"env no recursion into env", params{"REQUEST_URI": "/env", "AG": "%{ENV:CTX}"}, "%{ENV:CTX}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.LookupEnv = func(n string) (string, bool) { v, ok := osenv[n]; return v, ok }
			r, status := routeStatus(t, c, tt.p)
			if status != 0 || r.ApplicationGroup != tt.want {
				t.Errorf("status %d group %q, want %q", status, r.ApplicationGroup, tt.want)
			}
		})
	}

	// %{ENV:X}: unset stays literal; the context env comes before the bridge's.
	c.LookupEnv = func(string) (string, bool) { return "", false }
	r, _ := routeStatus(t, c, params{"REQUEST_URI": "/env"})
	if r.ApplicationGroup != "%{ENV:AG}" || r.CallableObject != "application" {
		t.Errorf("unset: group %q callable %q", r.ApplicationGroup, r.CallableObject)
	}
	r, _ = routeStatus(t, c, params{"REQUEST_URI": "/env", "CB": "app2"})
	if r.CallableObject != "app2" {
		t.Errorf("callable %q", r.CallableObject)
	}
	req := request{p: params{}, ctx: r2ctx(c), lookupEnv: func(string) (string, bool) { return "os", true }}
	if v := req.applicationGroup("%{ENV:CTX}"); v != "from-context" {
		t.Errorf("context env: %q", v)
	}
}

// r2ctx is the vhost's base chain (server + vhost settings).
func r2ctx(c *Config) chain { return c.VHosts[0].scope.base }

func TestServerNameSetting(t *testing.T) {
	c, _ := loadTree(t, map[string]string{"00.toml": "[server]\nserver-name = \"main.example\"\n" + expandConf}, "app.wsgi")
	r, _ := routeStatus(t, c, params{"REQUEST_URI": "/a/b", "SERVER_NAME": "x", "HTTP_HOST": "x:81"})
	if r.ApplicationGroup != "main.example:81|" {
		t.Errorf("group %q", r.ApplicationGroup)
	}
}

func TestRouteAllocs(t *testing.T) {
	c, _ := loadTree(t, map[string]string{"00.toml": expandConf}, "app.wsgi")
	p := params{"REQUEST_URI": "/some/path", "SERVER_NAME": "h", "HTTP_HOST": "h:8080"}
	n := testing.AllocsPerRun(100, func() {
		if _, err := c.Route(p); err != nil {
			t.Fatal(err)
		}
	})
	// the Route, the %{RESOURCE} string, and a few small ones
	if n > 6 {
		t.Errorf("Route allocates %v times", n)
	}
	t.Logf("allocs per Route: %v", n)
}
