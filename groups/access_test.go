package groups

import "testing"

// Access gives authorizer requests the access control of URLs that run no
// script (static files the front end serves); Route still answers 404.
func TestAccessWithoutScript(t *testing.T) {
	c, _ := loadTree(t, map[string]string{"a.toml": `
[[location]]
url = "/files"
access-script = "/srv/access.wsgi"
auth-type = "Basic"
auth-name = "Files"
require = ["valid-user"]
auth-user-script = "/srv/auth.wsgi"

[[directory]]
path = "/var/www/private"
access-script = "/srv/private.wsgi"
`})
	p := params{"REQUEST_URI": "/files/a.txt", "SCRIPT_FILENAME": "/var/www/private/a.txt"}
	if _, status := routeStatus(t, c, p); status != 404 {
		t.Fatalf("Route of a static file: status %d, want 404", status)
	}
	rt, err := c.Access(p)
	if err != nil {
		t.Fatal(err)
	}
	// The directory holding the file is more specific than the location.
	if rt.Auth.AccessScript != "/srv/private.wsgi" || rt.Auth.UserScript != "/srv/auth.wsgi" ||
		rt.Auth.Name != "Files" || len(rt.Auth.Require) != 1 {
		t.Fatalf("Access: %+v", rt.Auth)
	}
	rt, err = c.Access(params{"REQUEST_URI": "/elsewhere"})
	if err != nil || rt.Auth.AccessScript != "" {
		t.Fatalf("Access of an unprotected URL: %+v, %v", rt, err)
	}
	if _, err := c.Access(params{"REQUEST_URI": "/%zz"}); err == nil {
		t.Fatal("a malformed path is still an error")
	}
}
