package groups

import "sort"

// settings is one context's own keys (validated), plus where they came from.
type settings struct {
	rawContext
	env   []EnvVar // rawContext.Env sorted by name, for a stable merge
	where string   // FILE:LINE of the process-group key, for load-time messages
}

func newSettings(c rawContext, where string) *settings {
	s := &settings{rawContext: c, where: where}
	for k, v := range c.Env {
		s.env = append(s.env, EnvVar{k, v})
	}
	sort.Slice(s.env, func(i, j int) bool { return s.env[i].Name < s.env[j].Name })
	return s
}

// chain is the contexts that apply to a request, least specific first:
// server, vhost, alias, locations (shortest prefix first), directories
// (shortest path first). Lookups walk it backwards: the most specific wins.
type chain []*settings

func (c chain) str(get func(*rawContext) *string, def string) string {
	for i := len(c) - 1; i >= 0; i-- {
		if v := get(&c[i].rawContext); v != nil {
			return *v
		}
	}
	return def
}

func (c chain) flag(get func(*rawContext) *bool, def bool) bool {
	for i := len(c) - 1; i >= 0; i-- {
		if v := get(&c[i].rawContext); v != nil {
			return *v
		}
	}
	return def
}

func (c chain) list(get func(*rawContext) *[]string) []string {
	for i := len(c) - 1; i >= 0; i-- {
		if v := get(&c[i].rawContext); v != nil {
			return *v
		}
	}
	return nil
}

// envVar finds name in the merged env (most specific context first).
func (c chain) envVar(name string) (string, bool) {
	for i := len(c) - 1; i >= 0; i-- {
		if v, ok := c[i].Env[name]; ok {
			return v, true
		}
	}
	return "", false
}

// mergedEnv is the env of all contexts merged by name, sorted by name.
func (c chain) mergedEnv() []EnvVar {
	n := 0
	for _, s := range c {
		n += len(s.env)
	}
	if n == 0 {
		return nil
	}
	out := make([]EnvVar, 0, n)
	for i := len(c) - 1; i >= 0; i-- {
	next:
		for _, e := range c[i].env {
			for _, have := range out {
				if have.Name == e.Name {
					continue next
				}
			}
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Field getters, shared so Route does not build closures per request.
func getAppGroup(c *rawContext) *string     { return c.ApplicationGroup }
func getProcGroup(c *rawContext) *string    { return c.ProcessGroup }
func getCallable(c *rawContext) *string     { return c.CallableObject }
func getReloadMech(c *rawContext) *string   { return c.ReloadMechanism }
func getPassAuth(c *rawContext) *bool       { return c.PassAuthorization }
func getReloading(c *rawContext) *bool      { return c.ScriptReloading }
func getOutBuf(c *rawContext) *bool         { return c.OutputBuffering }
func getRestrict(c *rawContext) *[]string   { return c.RestrictProcess }
func getRequire(c *rawContext) *[]string    { return c.Require }
func getAuthType(c *rawContext) *string     { return c.AuthType }
func getAuthName(c *rawContext) *string     { return c.AuthName }
func getAuthUser(c *rawContext) *string     { return c.AuthUserScript }
func getAuthGroup(c *rawContext) *string    { return c.AuthGroupScript }
func getAccessScript(c *rawContext) *string { return c.AccessScript }
func getAuthAppGroup(c *rawContext) *string { return c.AuthApplicationGroup }
