package groups

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// tableRow is one resolved route as `wsgifcgi check` prints it.
type tableRow struct{ vhost, url, script, process, application string }

// WriteTable prints one row per route: the server context's ("*"), then
// each vhost's own and inherited ones. Groups are shown as configured for
// that route (unexpanded: %{RESOURCE} and %{ENV:..} depend on the request).
func (c *Config) WriteTable(w io.Writer) { writeRows(w, c.tableRows()) }

func writeRows(w io.Writer, rows []tableRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VHOST\tURL\tSCRIPT\tPROCESS-GROUP\tAPPLICATION-GROUP")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.vhost, r.url, r.script, r.process, r.application)
	}
	tw.Flush()
}

func (c *Config) tableRows() []tableRow {
	var rows []tableRow
	scopes := []*scope{c.server}
	for _, v := range c.VHosts {
		scopes = append(scopes, v.scope)
	}
	for _, sc := range scopes {
		label := "*"
		if sc.vhost != nil {
			label = sc.vhost.ServerName
			if sc.vhost.Port != 0 {
				label += fmt.Sprintf(":%d", sc.vhost.Port)
			}
		}
		for _, a := range sc.aliases {
			ctx := append(chain(nil), sc.base...)
			ctx = append(ctx, a.ctx)
			row := tableRow{vhost: label, url: a.url, script: a.path}
			switch {
			case a.re != nil:
				row.url = "~ " + a.url
			default:
				for _, l := range sc.locations {
					if l.matches(a.mount) {
						ctx = append(ctx, l.ctx)
					}
				}
				if a.dirForm {
					row.script = strings.TrimSuffix(a.path, "/") + "/*"
				}
			}
			ctx = sc.dirContexts(ctx, a.path)
			row.process, row.application = groupsOf(ctx)
			rows = append(rows, row)
		}
		for _, d := range sc.dirs {
			if d.handler != "wsgi-script" && len(d.exts) == 0 {
				continue
			}
			script := d.path + "/*"
			if d.handler != "wsgi-script" {
				script = d.path + "/*{" + strings.Join(d.exts, ",") + "}"
			}
			ctx := sc.dirContexts(append(chain(nil), sc.base...), d.path)
			row := tableRow{vhost: label, url: "(directory)", script: script}
			row.process, row.application = groupsOf(ctx)
			rows = append(rows, row)
		}
	}
	return rows
}

// dirContexts appends the directories covering file, least specific first.
func (sc *scope) dirContexts(ctx chain, file string) chain {
	for _, d := range sc.dirs {
		if d.contains(file) {
			ctx = append(ctx, d.ctx)
		}
	}
	return ctx
}

func groupsOf(ctx chain) (process, application string) {
	return ctx.str(getProcGroup, "%{GLOBAL}"), ctx.str(getAppGroup, "%{RESOURCE}")
}
