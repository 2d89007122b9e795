package gateway

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The HTTP side of WSGIAuthUserScript: Basic and Digest (RFC 7616, MD5,
// qop=auth) credentials, challenges, and Digest nonces. Which user and
// password are valid is the scripts' business (authScripts).

// credentials is what an Authorization header carried.
type credentials struct {
	scheme   string // "Basic" or "Digest"
	user     string
	password string            // Basic
	digest   map[string]string // Digest parameters
}

// parseAuthorization reads the Authorization header; ok is false when it is
// absent or malformed (the client is then challenged).
func parseAuthorization(h string) (credentials, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return credentials{}, false
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		return credentials{scheme: "Basic", user: user, password: pass}, ok && printable(user)
	case strings.EqualFold(scheme, "Digest"):
		params, ok := parseDigestParams(rest)
		if !ok || params["username"] == "" || !printable(params["username"]) {
			return credentials{}, false
		}
		return credentials{scheme: "Digest", user: params["username"], digest: params}, true
	}
	return credentials{}, false
}

// parseDigestParams reads `name=value, name="quoted \" value"`.
func parseDigestParams(s string) (map[string]string, bool) {
	m := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return m, true
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val strings.Builder
		if strings.HasPrefix(s, `"`) {
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, false
			}
			s = s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val.WriteString(strings.TrimSpace(s[:end]))
			s = s[end:]
		}
		m[name] = val.String()
	}
}

// digestAuth issues and checks Digest nonces: HMAC-signed timestamps that
// expire, with the nonce count tracked so a response cannot be replayed.
type digestAuth struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]uint64 // nonce -> highest nc accepted
}

func newDigestAuth() *digestAuth {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic(fmt.Sprintf("gateway: no randomness for digest nonces: %v", err))
	}
	return &digestAuth{secret: secret, ttl: 5 * time.Minute, now: time.Now, seen: map[string]uint64{}}
}

func (d *digestAuth) sign(ts, realm string) string {
	mac := hmac.New(sha256.New, d.secret)
	mac.Write([]byte(ts + "\x00" + realm))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// nonce makes a fresh nonce for realm.
func (d *digestAuth) nonce(realm string) string {
	ts := strconv.FormatInt(d.now().UnixNano(), 36)
	return ts + "." + d.sign(ts, realm)
}

// challenge is the WWW-Authenticate value; stale says the client's nonce
// expired but its credentials may be right (it retries without asking).
func (d *digestAuth) challenge(realm string, stale bool) string {
	c := fmt.Sprintf(`Digest realm="%s", qop="auth", algorithm=MD5, nonce="%s"`, quoteEscape(realm), d.nonce(realm))
	if stale {
		c += ", stale=true"
	}
	return c
}

// nonceState says whether a nonce is ours, unexpired.
func (d *digestAuth) nonceState(nonce, realm string) (valid, stale bool) {
	ts, sig, ok := strings.Cut(nonce, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(d.sign(ts, realm))) {
		return false, false
	}
	n, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return false, false
	}
	if d.now().Sub(time.Unix(0, n)) > d.ttl {
		return false, true
	}
	return true, false
}

// verify checks a Digest response against ha1 = MD5(user:realm:password).
// It reports stale for an expired nonce of ours.
func (d *digestAuth) verify(c credentials, realm, method, uri, ha1 string) (ok, stale bool) {
	p := c.digest
	if p["realm"] != realm || p["uri"] != uri || (p["algorithm"] != "" && !strings.EqualFold(p["algorithm"], "MD5")) {
		return false, false
	}
	valid, stale := d.nonceState(p["nonce"], realm)
	if !valid {
		return false, stale
	}
	ha2 := md5hex(method + ":" + uri)
	var want string
	switch p["qop"] {
	case "auth":
		if p["nc"] == "" || p["cnonce"] == "" {
			return false, false
		}
		want = md5hex(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	default:
		return false, false // RFC 2069 responses (no qop) are not accepted
	}
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(p["response"])), []byte(want)) != 1 {
		return false, false
	}
	nc, err := strconv.ParseUint(p["nc"], 16, 64)
	if err != nil {
		return false, false
	}
	return d.count(p["nonce"], nc), false
}

// count accepts nc for nonce only if it is higher than any before (replay).
func (d *digestAuth) count(nonce string, nc uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if last, ok := d.seen[nonce]; ok && nc <= last {
		return false
	}
	if len(d.seen) > 100000 {
		// Forget expired nonces; their responses fail the expiry check anyway.
		for n := range d.seen {
			ts, _, _ := strings.Cut(n, ".")
			if t, err := strconv.ParseInt(ts, 36, 64); err != nil || d.now().Sub(time.Unix(0, t)) > d.ttl {
				delete(d.seen, n)
			}
		}
	}
	d.seen[nonce] = nc
	return true
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// printable refuses control characters in a user name: it goes into the
// environ and into Variable-REMOTE_USER headers.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}
