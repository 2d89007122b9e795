package gateway

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseBasic(t *testing.T) {
	c, ok := parseAuthorization("Basic " + base64.StdEncoding.EncodeToString([]byte("joe:se:cret")))
	if !ok || c.scheme != "Basic" || c.user != "joe" || c.password != "se:cret" {
		t.Fatalf("got %+v %v", c, ok)
	}
	for _, bad := range []string{"", "Basic", "Basic !!!", "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("a\r\nX-Evil: 1:pw")), "Bearer abc"} {
		if _, ok := parseAuthorization(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

// digestResponse computes what a client (curl --digest) sends.
func digestResponse(user, realm, pass, method, uri, nonce, nc, cnonce string) string {
	ha1 := md5hex(user + ":" + realm + ":" + pass)
	ha2 := md5hex(method + ":" + uri)
	resp := md5hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5, response="%s", qop=auth, nc=%s, cnonce="%s"`,
		user, realm, nonce, uri, resp, nc, cnonce)
}

func challengeNonce(t *testing.T, ch string) string {
	t.Helper()
	p, ok := parseDigestParams(strings.TrimPrefix(ch, "Digest "))
	if !ok || p["nonce"] == "" || p["qop"] != "auth" {
		t.Fatalf("challenge %q", ch)
	}
	return p["nonce"]
}

func TestDigestRoundTripReplayAndExpiry(t *testing.T) {
	d := newDigestAuth()
	now := time.Now()
	d.now = func() time.Time { return now }
	realm, ha1 := "Members", md5hex("joe:Members:pw")
	nonce := challengeNonce(t, d.challenge(realm, false))
	check := func(hdr, uri string) (bool, bool) {
		c, ok := parseAuthorization(hdr)
		if !ok {
			t.Fatalf("unparsable %q", hdr)
		}
		return d.verify(c, realm, "GET", uri, ha1)
	}
	if ok, _ := check(digestResponse("joe", realm, "pw", "GET", "/a?b=1", nonce, "00000001", "xyz"), "/a?b=1"); !ok {
		t.Fatal("a correct response was refused")
	}
	if ok, _ := check(digestResponse("joe", realm, "pw", "GET", "/a?b=1", nonce, "00000001", "xyz"), "/a?b=1"); ok {
		t.Fatal("a replayed response (same nc) was accepted")
	}
	if ok, _ := check(digestResponse("joe", realm, "pw", "GET", "/a?b=1", nonce, "00000002", "xyz"), "/a?b=1"); !ok {
		t.Fatal("the next nc was refused")
	}
	if ok, _ := check(digestResponse("joe", realm, "wrong", "GET", "/a", nonce, "00000003", "xyz"), "/a"); ok {
		t.Fatal("a wrong password was accepted")
	}
	if ok, _ := check(digestResponse("joe", realm, "pw", "GET", "/other", nonce, "00000004", "xyz"), "/a"); ok {
		t.Fatal("a response for another URI was accepted")
	}
	if ok, _ := check(digestResponse("joe", realm, "pw", "GET", "/a", "123.forged", "00000001", "xyz"), "/a"); ok {
		t.Fatal("a forged nonce was accepted")
	}
	now = now.Add(10 * time.Minute)
	ok, stale := check(digestResponse("joe", realm, "pw", "GET", "/a", nonce, "00000005", "xyz"), "/a")
	if ok || !stale {
		t.Fatalf("an expired nonce: ok %v stale %v, want refused as stale", ok, stale)
	}
}
