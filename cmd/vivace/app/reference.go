package app

import (
	"flag"
	"fmt"
	"reflect"
	"strings"
)

// Reference renders every config key as a Markdown table: the YAML path, the
// flag that sets it, its default and its description. Keys are matched to
// flags by the address of the field each flag writes to.
func Reference() string {
	cfg := &Config{}
	f := flag.NewFlagSet("vivace", flag.ContinueOnError)
	cfg.RegisterFlagsAndApplyDefaults(f)
	byAddr := map[uintptr]*flag.Flag{}
	f.VisitAll(func(fl *flag.Flag) {
		v := reflect.ValueOf(fl.Value)
		if v.Kind() == reflect.Pointer {
			byAddr[v.Pointer()] = fl
		}
	})
	var b strings.Builder
	b.WriteString("| key | flag | default | description |\n|---|---|---|---|\n")
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if name == "-" || !sf.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			key := strings.TrimPrefix(path+"."+name, ".")
			if opts == "inline" {
				key = path
			}
			fv := v.Field(i)
			// A struct shares its address with its first field: recurse into
			// it unless it is itself a flag value (a Secret, a log level).
			_, isFlagValue := fv.Addr().Interface().(flag.Value)
			if fv.Kind() == reflect.Struct && !isFlagValue {
				walk(fv, key)
				continue
			}
			if fl, ok := byAddr[fv.Addr().Pointer()]; ok {
				def := fl.DefValue
				if def == "" {
					def = `""`
				}
				fmt.Fprintf(&b, "| `%s` | `-%s` | `%s` | %s |\n", key, fl.Name, def, strings.ReplaceAll(fl.Usage, "|", `\|`))
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	return b.String()
}
