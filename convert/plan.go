package convert

import (
	"fmt"
	"strconv"
	"strings"
)

// The first pass settles what the translation depends on before any
// directive is read: each <VirtualHost>'s name, port and file, and every
// daemon process group with the vhost that owns it (a WSGIProcessGroup may
// come before the WSGIDaemonProcess it names).

// vhostPlan is one <VirtualHost>.
type vhostPlan struct {
	n     *node
	name  string // lower-cased server-name
	port  int    // 0: any
	file  *outFile
	dupOf string // FILE:LINE of the vhost already serving name and port
}

// daemonOwner is where a WSGIDaemonProcess is.
type daemonOwner struct {
	vhost string // lower-cased server-name; "" for the server context
	n     *node
}

func (c *converter) plan() error {
	if err := checkNesting(c.t.nodes, nil); err != nil {
		return err
	}
	global := ""
	eachDirective(c.t.nodes, func(n *node) {
		if n.key == "servername" && len(n.args) > 0 {
			global = hostOf(n.args[0])
		}
	})
	c.collectDaemons(c.t.nodes, "")

	type ident struct {
		name string
		port int
	}
	served := map[ident]string{} // name or alias -> FILE:LINE of its vhost
	eachSection(c.t.nodes, "virtualhost", func(n *node) {
		p := &vhostPlan{n: n}
		c.vhosts[n] = p
		c.order = append(c.order, p)
		var aliases []*node
		var nameAt *node
		eachDirective(n.kids, func(d *node) {
			switch d.key {
			case "servername":
				if len(d.args) > 0 {
					p.name, nameAt = hostOf(d.args[0]), d
				}
			case "serveralias":
				aliases = append(aliases, d)
			}
		})
		p.port = c.vhostPort(n)
		if p.name == "" {
			p.name = global
		}
		if p.name == "" {
			p.name = "_default_"
			c.noteAs(n, "VirtualHost", "it has no ServerName and neither has the server: written with server-name %q; set the host name its requests carry", p.name)
		}
		if at, ok := served[ident{p.name, p.port}]; ok && at != n.where() {
			p.dupOf = at
			return
		}
		served[ident{p.name, p.port}] = n.where()
		main := newTable("[vhost]")
		main.always = true
		switch {
		case nameAt != nil:
			main.set("server-name", p.name, c.src(nameAt))
		case p.name == global:
			main.set("server-name", p.name, "the server's ServerName")
		default:
			main.set("server-name", p.name, "a placeholder: no ServerName")
		}
		for _, d := range aliases {
			for _, a := range d.args {
				a = hostOf(a)
				at, taken := served[ident{a, p.port}]
				if !taken && p.port != 0 {
					at, taken = served[ident{a, 0}] // a vhost on any port has it already
				}
				switch {
				case a == p.name:
				case strings.ContainsAny(a, "*?"):
					c.noteAs(d, "ServerAlias", "%s: wsgifcgi matches host names exactly, without wildcards", a)
				case taken && at != n.where():
					c.noteAs(d, "ServerAlias", "%s is already a name of the <VirtualHost> at %s, which Apache picks first", a, at)
				default:
					served[ident{a, p.port}] = n.where()
					main.add("server-alias", []string{a}, c.src(d))
				}
			}
		}
		p.file = newOutFile("", main)
		p.file.vhostName = p.name
		p.file.header = []string{"Converted by `wsgifcgi convert` from " + c.source + ": " + n.label() + " at " + c.at(n) + "."}
		c.collectDaemons(n.kids, p.name)
	})
	c.nameFiles()
	c.placePorts()
	return nil
}

// placePorts decides each vhost's port key. Apache's port is the port
// Apache listened on; behind a front end SERVER_PORT is the front end's, so
// a pinned port = 80 would stop the vhost matching (nginx on 8080). A vhost
// whose name no other vhost has is written without a port (it answers on
// any); the usual :80 and :443 pair keeps its ports to stay apart, with a
// warning saying what to change.
func (c *converter) placePorts() {
	count := c.nameCounts()
	for _, p := range c.order {
		if p.file == nil || p.port == 0 {
			continue
		}
		main := p.file.main
		if count[p.name] == 1 {
			main.comments = append(main.comments, fmt.Sprintf(
				"%s: no port, so it also matches behind a front end listening on another port (port = %d would match only SERVER_PORT %d).",
				p.n.label(), p.port, p.port))
			continue
		}
		main.set("port", int64(p.port), "from "+p.n.label())
		c.warnings = append(c.warnings, Warning{File: p.file.name, text: fmt.Sprintf(
			"%s: %s: port = %d is kept in %%s to tell it from the other <VirtualHost> named %s: it matches only requests whose SERVER_PORT is %d. "+
				"Behind a front end listening on another port, set port to the front end's port (or merge the vhosts and drop port)",
			c.at(p.n), p.n.label(), p.port, p.name, p.port)})
	}
}

// nameCounts is how many vhost files share each vhost name.
func (c *converter) nameCounts() map[string]int {
	count := map[string]int{}
	for _, p := range c.order {
		if p.file != nil {
			count[p.name]++
		}
	}
	return count
}

// nameFiles gives each vhost file its name: 10-NAME.toml, with _PORT added
// when several vhosts share NAME (the usual :80 and :443 pair).
func (c *converter) nameFiles() {
	count := c.nameCounts()
	for _, p := range c.order {
		if p.file == nil {
			continue
		}
		name := "10-" + fileSafe(p.name)
		if count[p.name] > 1 && p.port != 0 {
			name += "_" + strconv.Itoa(p.port)
		}
		p.file.name = name + ".toml"
	}
}

// collectDaemons records the WSGIDaemonProcess directives of one context;
// the first of a name wins (mod_wsgi refuses a second one).
func (c *converter) collectDaemons(nodes []*node, vhost string) {
	eachDirective(nodes, func(n *node) {
		if n.key != "wsgidaemonprocess" || len(n.args) == 0 || !validDaemonName(n.args[0]) {
			return
		}
		if _, ok := c.daemons[n.args[0]]; !ok {
			c.daemons[n.args[0]] = daemonOwner{vhost, n}
		}
	})
}

func validDaemonName(name string) bool {
	return name != "" && !strings.HasPrefix(name, "%") && !strings.Contains(name, "${")
}

// vhostPort is the port of the vhost's addresses, 0 when they give none
// ("*") or differ.
func (c *converter) vhostPort(n *node) int {
	port, first := 0, true
	for _, a := range n.args {
		_, p := splitAddr(a)
		if !first && p != port {
			c.noteAs(n, "VirtualHost", "the ports of its addresses differ: port is left out, so it answers on any port")
			return 0
		}
		port, first = p, false
	}
	return port
}

// splitAddr splits a <VirtualHost> address: "*:80", "[::1]:8080", "host".
func splitAddr(a string) (host string, port int) {
	h, p := a, ""
	if strings.HasPrefix(a, "[") {
		if i := strings.IndexByte(a, ']'); i > 0 {
			h, p = a[1:i], strings.TrimPrefix(a[i+1:], ":")
		}
	} else if i := strings.LastIndexByte(a, ':'); i >= 0 {
		h, p = a[:i], a[i+1:]
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		n = 0
	}
	return h, n
}

// hostOf reduces a ServerName ("https://www.example.com:443") to the host.
func hostOf(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	h, _ := splitAddr(s)
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") <= 1 {
		s = h
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// fileSafe keeps a name usable as a file name.
func fileSafe(s string) string {
	b := []byte(strings.ToLower(s))
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// checkNesting rejects what Apache itself refuses to start with: a
// <VirtualHost> inside another section.
func checkNesting(nodes []*node, in *node) error {
	for _, n := range nodes {
		if !n.section {
			continue
		}
		if n.key == "virtualhost" && in != nil {
			return fmt.Errorf("%s: <VirtualHost> cannot occur within %s (opened at %s)", n.where(), in.label(), in.where())
		}
		next := in
		if !isConditional(n.key) {
			next = n
		}
		if err := checkNesting(n.kids, next); err != nil {
			return err
		}
	}
	return nil
}
