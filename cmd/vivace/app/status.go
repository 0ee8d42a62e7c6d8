package app

import (
	"fmt"
	"net/http"
	"reflect"

	"gopkg.in/yaml.v3"
)

// statusConfig answers /status/config with the config this process runs, as
// YAML, secrets redacted (flagext.Secret prints as asterisks). As in Tempo,
// ?mode=defaults shows the defaults and ?mode=diff only what differs from them.
func (a *App) statusConfig(w http.ResponseWriter, r *http.Request) {
	var (
		out any = a.cfg
		err error
	)
	switch mode := r.URL.Query().Get("mode"); mode {
	case "":
	case "defaults":
		out = defaultConfig()
	case "diff":
		out, err = configDiff(defaultConfig(), a.cfg)
	default:
		http.Error(w, fmt.Sprintf("mode %q: want defaults, diff or none", mode), http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeYAML(w, out)
}

// statusRuntimeConfig answers /status/runtime_config with the limits in
// force: the defaults and each tenant of the runtime overrides file as last
// loaded (?mode=diff: only where a tenant differs from the defaults).
func (a *App) statusRuntimeConfig(w http.ResponseWriter, r *http.Request) {
	defaults := a.overrides.Defaults()
	out := map[string]any{"defaults": defaults}
	tenants := map[string]any{}
	for tenant, l := range a.overrides.PerTenant() {
		tenants[tenant] = l
	}
	switch mode := r.URL.Query().Get("mode"); mode {
	case "":
	case "diff":
		out = map[string]any{}
		d, err := yamlMap(defaults)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for tenant, l := range tenants {
			m, err := yamlMap(l)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			tenants[tenant] = diffMaps(d, m)
		}
	default:
		http.Error(w, fmt.Sprintf("mode %q: want diff or none", mode), http.StatusBadRequest)
		return
	}
	out["overrides"] = tenants
	writeYAML(w, out)
}

func writeYAML(w http.ResponseWriter, v any) {
	b, err := yaml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/yaml; charset=utf-8")
	_, _ = w.Write(b)
}

// defaultConfig is the config with every default and nothing else.
func defaultConfig() *Config {
	cfg, _, err := Load([]string{"-config.print-defaults"})
	if err != nil {
		panic(err) // the defaults always load: TestDefaultConfig
	}
	return cfg
}

// configDiff is the part of cfg that differs from def, as nested YAML maps.
func configDiff(def, cfg *Config) (map[string]any, error) {
	d, err := yamlMap(def)
	if err != nil {
		return nil, err
	}
	c, err := yamlMap(cfg)
	if err != nil {
		return nil, err
	}
	return diffMaps(d, c), nil
}

func yamlMap(v any) (map[string]any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	return m, yaml.Unmarshal(b, &m)
}

func diffMaps(def, cfg map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range cfg {
		dv := def[k]
		dm, ok1 := dv.(map[string]any)
		cm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			if sub := diffMaps(dm, cm); len(sub) > 0 {
				out[k] = sub
			}
			continue
		}
		if !reflect.DeepEqual(dv, v) {
			out[k] = v
		}
	}
	return out
}
