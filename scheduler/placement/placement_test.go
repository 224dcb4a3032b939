package placement

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

func mustParse(t *testing.T, s string) []Constraint {
	t.Helper()
	c, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return c
}

func agent(host string, kv ...string) map[string]string {
	v := map[string]string{FieldHostname: host, FieldAtHost: host}
	for i := 0; i+1 < len(kv); i += 2 {
		v[kv[i]] = kv[i+1]
	}
	return v
}

func TestParseRefusesWithTheReason(t *testing.T) {
	for s, want := range map[string]string{
		`hostname:UNIQUE`:                                       "JSON list",
		`[["hostname","LIKE","("]]`:                             "regular expression",
		`[["hostname","NEAR"]]`:                                 "not one of UNIQUE, CLUSTER",
		`[["@zone","UNIQUE","x"]]`:                              "takes no value",
		`[["rack","IS"]]`:                                       "needs a value",
		`[["rack","MAX_PER","-1"]]`:                             "whole number",
		`[["rack","GROUP_BY","x"]]`:                             "whole number",
		`[["@datacenter","UNIQUE"]]`:                            "@hostname, @zone and @region",
		`[[" ","UNIQUE"]]`:                                      "empty field",
		`[["a b","UNIQUE"]]`:                                    "no spaces",
		`[["hostname"]]`:                                        "[field, operator]",
		`[["hostname","IS","a","b"]]`:                           "[field, operator]",
		`[["rack","LIKE","` + strings.Repeat("a", 2000) + `"]]`: "longer than",
	} {
		_, err := Parse(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%.60s): %v, want an error with %q", s, err, want)
		}
	}
	for _, s := range []string{"", " ", "[]", `[["hostname","UNIQUE"]]`, `[["@zone","group_by"]]`, `[["@region","CLUSTER","r1"]]`,
		`[["rack","LIKE","r[12]"],["rack","UNLIKE","r2"],["@hostname","MAX_PER","2"],["os","IS","linux"]]`} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%s): %v", s, err)
		}
	}
}

func TestValuesFromTheOffer(t *testing.T) {
	o := mesos.Offer{
		Hostname: "a1.example",
		Domain: &mesos.DomainInfo{FaultDomain: &mesos.DomainInfo_FaultDomain{
			Region: mesos.DomainInfo_FaultDomain_RegionInfo{Name: "eu"},
			Zone:   mesos.DomainInfo_FaultDomain_ZoneInfo{Name: "eu-1a"},
		}},
		Attributes: []mesos.Attribute{
			{Name: "rack", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: "r1"}},
			{Name: "cores", Type: mesos.SCALAR, Scalar: &mesos.Value_Scalar{Value: 8}},
			{Name: "ids", Type: mesos.RANGES, Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 1, End: 3}, {Begin: 7, End: 7}}}},
			{Name: "tags", Type: mesos.SET, Set: &mesos.Value_Set{Item: []string{"ssd", "gpu"}}},
			{Name: "@zone", Type: mesos.TEXT, Text: &mesos.Value_Text{Value: "spoofed"}},
		},
	}
	want := map[string]string{"hostname": "a1.example", "@hostname": "a1.example", "@zone": "eu-1a", "@region": "eu",
		"rack": "r1", "cores": "8", "ids": "[1-3,7-7]", "tags": "{ssd,gpu}"}
	if got := Values(o); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if got := Values(mesos.Offer{Hostname: "h"}); len(got) != 2 {
		t.Fatalf("no domain: %v", got)
	}
}

func TestCheck(t *testing.T) {
	a1 := agent("a1", "@zone", "a", "rack", "r1")
	a2 := agent("a2", "@zone", "a", "rack", "r2")
	b1 := agent("b1", "@zone", "b", "rack", "r1")
	noZone := agent("n1")
	for _, tc := range []struct {
		name, rules string
		cand        map[string]string
		placed      []map[string]string
		seen        []map[string]string
		refused     string // "" = accepted
	}{
		{"UNIQUE free", `[["@zone","UNIQUE"]]`, b1, []map[string]string{a1}, nil, ""},
		{"UNIQUE taken", `[["@zone","UNIQUE"]]`, a2, []map[string]string{a1}, nil, "a server already runs where @zone=a"},
		{"UNIQUE hostname", `[["hostname","UNIQUE"]]`, a1, []map[string]string{a1}, nil, "hostname=a1"},
		{"missing field refuses", `[["@zone","UNIQUE"]]`, noZone, nil, nil, "agent n1 has no @zone"},
		{"missing field passes UNLIKE", `[["@zone","UNLIKE","a"]]`, noZone, nil, nil, ""},
		{"CLUSTER value", `[["@region","CLUSTER","eu"]]`, agent("x", "@region", "us"), nil, nil, `agent has @region="us"`},
		{"CLUSTER first free", `[["rack","CLUSTER"]]`, b1, nil, nil, ""},
		{"CLUSTER follows first", `[["rack","CLUSTER"]]`, a2, []map[string]string{a1}, nil, `servers go where it is "r1"`},
		{"CLUSTER same", `[["rack","CLUSTER"]]`, b1, []map[string]string{a1}, nil, ""},
		{"IS", `[["rack","IS","r2"]]`, a2, nil, nil, ""},
		{"IS other", `[["rack","IS","r2"]]`, a1, nil, nil, `agent has rack="r1"`},
		{"LIKE is a full match", `[["hostname","LIKE","a"]]`, a1, nil, nil, `agent has hostname="a1"`},
		{"LIKE", `[["hostname","LIKE","a[0-9]"]]`, a1, nil, nil, ""},
		{"UNLIKE", `[["hostname","UNLIKE","a.*"]]`, a1, nil, nil, `agent has hostname="a1"`},
		{"UNLIKE other", `[["hostname","UNLIKE","b.*"]]`, a1, nil, nil, ""},
		{"MAX_PER under", `[["@zone","MAX_PER","2"]]`, a2, []map[string]string{a1}, nil, ""},
		{"MAX_PER reached", `[["@zone","MAX_PER","1"]]`, a2, []map[string]string{a1}, nil, "1 servers already run where @zone=a"},
		{"GROUP_BY new value", `[["@zone","GROUP_BY"]]`, b1, []map[string]string{a1}, nil, ""},
		{"GROUP_BY a seen value is empty", `[["@zone","GROUP_BY"]]`, a2, []map[string]string{a1}, []map[string]string{b1}, "b first"},
		{"GROUP_BY only value seen", `[["@zone","GROUP_BY"]]`, a2, []map[string]string{a1}, nil, ""},
		{"GROUP_BY expected count", `[["@zone","GROUP_BY","2"]]`, a2, []map[string]string{a1}, nil, "waiting for an agent with another value"},
		{"GROUP_BY public agents do not count", `[["@zone","GROUP_BY"]]`, a2, []map[string]string{a1}, []map[string]string{agent("p", "@zone", "p", "public_ip", "true")}, ""},
		{"every rule", `[["rack","LIKE","r.*"],["@zone","UNIQUE"]]`, a2, []map[string]string{a1}, nil, "[@zone UNIQUE]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(mustParse(t, tc.rules), tc.cand, tc.placed, tc.seen)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, want a refusal with %q", err, tc.refused)
			}
		})
	}
}

// place runs placement the way the scheduler does, against an adversarial
// offer order (every agent of zone a first): each server takes the first
// agent, in that order, that is free and passes the constraints.
func place(t *testing.T, rules string, servers int, agents []map[string]string) map[string]int {
	t.Helper()
	cons := mustParse(t, rules)
	var placed []map[string]string
	used := map[string]bool{}
	for s := 0; s < servers; s++ {
		ok := false
		for _, a := range agents {
			if used[a[FieldHostname]] || Check(cons, a, placed, agents) != nil {
				continue
			}
			used[a[FieldHostname]] = true
			placed = append(placed, a)
			ok = true
			break
		}
		if !ok {
			t.Fatalf("server %d not placed (placed so far: %v)", s, placed)
		}
	}
	return countBy(FieldZone, placed)
}

func threeZones() []map[string]string {
	var agents []map[string]string
	for _, z := range []string{"a", "b", "c"} {
		for i := 1; i <= 3; i++ {
			agents = append(agents, agent(fmt.Sprintf("%s%d", z, i), "@zone", z))
		}
	}
	return agents
}

func spread(counts map[string]int) []int {
	var out []int
	for _, n := range counts {
		out = append(out, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(out)))
	return out
}

func TestGroupByOverThreeZones(t *testing.T) {
	for _, rules := range []string{`[["@zone","GROUP_BY","3"]]`, `[["@zone","GROUP_BY"]]`} {
		if got := spread(place(t, rules, 3, threeZones())); !reflect.DeepEqual(got, []int{1, 1, 1}) {
			t.Errorf("%s, 3 servers: %v, want one per zone", rules, got)
		}
		if got := spread(place(t, rules, 5, threeZones())); !reflect.DeepEqual(got, []int{2, 2, 1}) {
			t.Errorf("%s, 5 servers: %v, want 2-2-1", rules, got)
		}
		if got := spread(place(t, rules, 7, threeZones())); !reflect.DeepEqual(got, []int{3, 2, 2}) {
			t.Errorf("%s, 7 servers: %v, want 3-2-2", rules, got)
		}
	}
	// Only zone a offered so far: with the expected count the second server
	// waits; without it, the values seen are all there is.
	onlyA := threeZones()[:3]
	cons := mustParse(t, `[["@zone","GROUP_BY","3"]]`)
	if err := Check(cons, onlyA[1], onlyA[:1], onlyA); err == nil {
		t.Error("GROUP_BY 3 placed a second server in zone a with only zone a seen")
	}
	if err := Check(mustParse(t, `[["@zone","GROUP_BY"]]`), onlyA[1], onlyA[:1], onlyA); err != nil {
		t.Errorf("GROUP_BY without a count, one zone seen: %v", err)
	}
}

func TestCompiledIsMemoised(t *testing.T) {
	rules := [][]string{{"rack", "LIKE", "r[0-9]+"}}
	a, err := Compiled(rules)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Compiled(rules)
	if a[0].re != b[0].re {
		t.Error("the regular expression was compiled twice")
	}
	if _, err := Compiled([][]string{{"rack", "LIKE", "("}}); err == nil {
		t.Error("bad stored rule accepted")
	}
}
