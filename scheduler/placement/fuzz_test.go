package placement

import (
	"encoding/json"
	"testing"
)

// FuzzParse: any option text is refused with an error or gives rules that
// survive being stored ([][]string) and checked again, and that Check can
// apply to any agent without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", `[["hostname","UNIQUE"]]`, `[["@zone","GROUP_BY","3"]]`, `[["rack","LIKE","r[0-9]+"]]`,
		`[["hostname","LIKE","("]]`, `[["@region","CLUSTER"]]`, `[["a","MAX_PER","2"],["b","UNLIKE",".*"],["c","IS","x"]]`,
		`[[]]`, `[["x"]]`, `{"a":1}`, `[["@zone","GROUP_BY","99999999999999999999"]]`} {
		f.Add(s, "a1", "z1", "z2")
	}
	f.Fuzz(func(t *testing.T, s, host, zone1, zone2 string) {
		cons, err := Parse(s)
		if err != nil {
			return
		}
		raw := make([][]string, 0, len(cons))
		for _, c := range cons {
			r := []string{c.Field, c.Operator}
			if c.Value != "" || arity[c.Operator] == "required" {
				r = append(r, c.Value)
			}
			raw = append(raw, r)
		}
		b, _ := json.Marshal(raw)
		again, err := Parse(string(b))
		if err != nil || len(again) != len(cons) {
			t.Fatalf("stored rules %s do not parse again: %v", b, err)
		}
		cand := map[string]string{FieldHostname: host, FieldAtHost: host, FieldZone: zone1}
		other := map[string]string{FieldHostname: host + "x", FieldZone: zone2, "rack": zone1}
		for _, placed := range [][]map[string]string{nil, {other}, {other, cand}} {
			_ = Check(cons, cand, placed, []map[string]string{other, cand})
		}
	})
}
