// Package placement is Marathon's placement constraints for the Consul
// servers: parsing (checked once, where the option enters) and the check of
// one agent against the servers already placed. Pure functions over plain
// data.
//
// Supported, as in Marathon: the operators UNIQUE, CLUSTER, GROUP_BY,
// LIKE, UNLIKE, MAX_PER and IS; the fields hostname (or @hostname), @zone
// and @region (the agent's Mesos fault domain) and any agent attribute.
package placement

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Fields with a meaning of their own; any other field is an agent attribute.
const (
	FieldHostname  = "hostname"
	FieldAtHost    = "@hostname"
	FieldZone      = "@zone"
	FieldRegion    = "@region"
	publicIPAttr   = "public_ip"
	maxRules       = 32
	maxPatternSize = 1024
)

// Constraint is one checked rule.
type Constraint struct {
	Field, Operator, Value string
	re                     *regexp.Regexp // LIKE, UNLIKE: the full-match pattern
	n                      int            // MAX_PER; GROUP_BY's expected count (0: none)
}

func (c Constraint) String() string {
	if c.Value == "" {
		return fmt.Sprintf("[%s %s]", c.Field, c.Operator)
	}
	return fmt.Sprintf("[%s %s %s]", c.Field, c.Operator, c.Value)
}

// arity: whether an operator needs a value ("required"), takes one
// ("optional") or takes none ("none").
var arity = map[string]string{
	"UNIQUE": "none", "CLUSTER": "optional", "GROUP_BY": "optional",
	"LIKE": "required", "UNLIKE": "required", "MAX_PER": "required", "IS": "required",
}

// Operators lists the supported operators, for messages and docs.
const Operators = "UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS"

// Parse parses the option's text: empty (no rule), or a JSON list of
// Marathon constraints such as [["hostname","UNIQUE"]] or
// [["@zone","GROUP_BY","3"]]. Every rule is checked: known operator, a
// valid field, the value each operator needs, regular expressions compiled.
func Parse(s string) ([]Constraint, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var raw [][]string
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf(`empty, or a JSON list of Marathon constraints such as [["hostname","UNIQUE"]] or [["@zone","GROUP_BY","3"]] (%v)`, err)
	}
	return FromRules(raw)
}

// FromRules checks rules in their stored form ([field, operator, value?]).
func FromRules(raw [][]string) ([]Constraint, error) {
	if len(raw) > maxRules {
		return nil, fmt.Errorf("at most %d constraints, not %d", maxRules, len(raw))
	}
	out := make([]Constraint, 0, len(raw))
	for i, r := range raw {
		c, err := parseRule(r)
		if err != nil {
			return nil, fmt.Errorf("constraint %d %q: %w", i+1, r, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func parseRule(r []string) (Constraint, error) {
	if len(r) < 2 || len(r) > 3 {
		return Constraint{}, errors.New("want [field, operator] or [field, operator, value]")
	}
	c := Constraint{Field: strings.TrimSpace(r[0]), Operator: strings.ToUpper(strings.TrimSpace(r[1]))}
	if len(r) == 3 {
		c.Value = r[2]
	}
	if err := checkField(c.Field); err != nil {
		return Constraint{}, err
	}
	ar, ok := arity[c.Operator]
	if !ok {
		return Constraint{}, fmt.Errorf("operator %q is not one of %s", r[1], Operators)
	}
	switch {
	case ar == "none" && len(r) == 3:
		return Constraint{}, fmt.Errorf("%s takes no value", c.Operator)
	case ar == "required" && len(r) != 3:
		return Constraint{}, fmt.Errorf("%s needs a value", c.Operator)
	}
	switch c.Operator {
	case "MAX_PER", "GROUP_BY":
		if c.Operator == "GROUP_BY" && c.Value == "" {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(c.Value))
		if err != nil || n < 1 || n > 10000 {
			return Constraint{}, fmt.Errorf("%s needs a whole number from 1 to 10000, not %q", c.Operator, c.Value)
		}
		c.n = n
	case "LIKE", "UNLIKE":
		if len(c.Value) > maxPatternSize {
			return Constraint{}, fmt.Errorf("%s pattern longer than %d bytes", c.Operator, maxPatternSize)
		}
		re, err := regexp.Compile("^(?:" + c.Value + ")$")
		if err != nil {
			return Constraint{}, fmt.Errorf("%s needs a regular expression (matched against the whole value): %v", c.Operator, err)
		}
		c.re = re
	}
	return c, nil
}

func checkField(f string) error {
	switch {
	case f == "":
		return errors.New("empty field: want hostname, @hostname, @zone, @region or an agent attribute name")
	case strings.HasPrefix(f, "@"):
		if f != FieldAtHost && f != FieldZone && f != FieldRegion {
			return fmt.Errorf("field %q: the @ fields are @hostname, @zone and @region", f)
		}
	case strings.ContainsAny(f, " \t\r\n:;,"):
		return fmt.Errorf("field %q: an agent attribute name has no spaces or ':;,'", f)
	}
	return nil
}

// cache: rules as stored in the target are compiled once per distinct set.
var cache = struct {
	sync.Mutex
	m map[string]compiled
}{m: map[string]compiled{}}

type compiled struct {
	cons []Constraint
	err  error
}

// Compiled is FromRules, memoised: the target's rules are checked and their
// regular expressions compiled once, not at every offer.
func Compiled(raw [][]string) ([]Constraint, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	b, _ := json.Marshal(raw)
	key := string(b)
	cache.Lock()
	defer cache.Unlock()
	if c, ok := cache.m[key]; ok {
		return c.cons, c.err
	}
	cons, err := FromRules(raw)
	if len(cache.m) >= 64 { // a handful of distinct targets in a process's life
		cache.m = map[string]compiled{}
	}
	cache.m[key] = compiled{cons, err}
	return cons, err
}

// Values are an agent's values for constraint fields, from its offer:
// hostname and @hostname, @zone and @region (when the agent has a fault
// domain) and every attribute (text as is, scalars as Mesos prints them,
// ranges as [a-b,c-d], sets as {a,b}).
func Values(o mesos.Offer) map[string]string {
	v := map[string]string{FieldHostname: o.Hostname, FieldAtHost: o.Hostname}
	if fd := o.GetDomain().GetFaultDomain(); fd != nil {
		if z := fd.Zone.Name; z != "" {
			v[FieldZone] = z
		}
		if r := fd.Region.Name; r != "" {
			v[FieldRegion] = r
		}
	}
	for _, a := range o.Attributes {
		if _, own := v[a.Name]; own || a.Name == "" {
			continue
		}
		switch {
		case a.Text != nil:
			v[a.Name] = a.Text.Value
		case a.Scalar != nil:
			v[a.Name] = strconv.FormatFloat(a.Scalar.Value, 'f', -1, 64)
		case a.Ranges != nil:
			parts := make([]string, 0, len(a.Ranges.Range))
			for _, r := range a.Ranges.Range {
				parts = append(parts, fmt.Sprintf("%d-%d", r.Begin, r.End))
			}
			v[a.Name] = "[" + strings.Join(parts, ",") + "]"
		case a.Set != nil:
			v[a.Name] = "{" + strings.Join(a.Set.Item, ",") + "}"
		}
	}
	return v
}

// Public reports whether values are those of a DC/OS public agent.
func Public(v map[string]string) bool { return v[publicIPAttr] == "true" }

// Check decides whether a server may be placed on the agent with values
// cand, given the agents of the servers already placed (placed, one entry
// per server) and every private agent seen in offers (seen, for GROUP_BY's
// values). The error says which rule refused and why.
func Check(cons []Constraint, cand map[string]string, placed, seen []map[string]string) error {
	for _, c := range cons {
		if err := check(c, cand, placed, seen); err != nil {
			return fmt.Errorf("constraint %s: %w", c, err)
		}
	}
	return nil
}

func check(c Constraint, cand map[string]string, placed, seen []map[string]string) error {
	val, has := cand[c.Field]
	if !has {
		if c.Operator == "UNLIKE" {
			return nil
		}
		return fmt.Errorf("agent %s has no %s", cand[FieldHostname], c.Field)
	}
	counts := countBy(c.Field, placed)
	switch c.Operator {
	case "UNIQUE":
		if counts[val] > 0 {
			return fmt.Errorf("a server already runs where %s=%s", c.Field, val)
		}
	case "CLUSTER":
		want := c.Value
		if want == "" && len(counts) > 0 {
			want = onlyKey(counts) // every server with the first one's value
		}
		if want != "" && val != want {
			return fmt.Errorf("agent has %s=%q, servers go where it is %q", c.Field, val, want)
		}
	case "IS":
		if val != c.Value {
			return fmt.Errorf("agent has %s=%q", c.Field, val)
		}
	case "LIKE":
		if !c.re.MatchString(val) {
			return fmt.Errorf("agent has %s=%q", c.Field, val)
		}
	case "UNLIKE":
		if c.re.MatchString(val) {
			return fmt.Errorf("agent has %s=%q", c.Field, val)
		}
	case "MAX_PER":
		if counts[val] >= c.n {
			return fmt.Errorf("%d servers already run where %s=%s", counts[val], c.Field, val)
		}
	case "GROUP_BY":
		return groupBy(c, val, counts, seen)
	default:
		return fmt.Errorf("unknown operator %q", c.Operator)
	}
	return nil
}

// groupBy is Marathon's rule: a value without a server is always fine;
// otherwise every value must have one (the values seen in offers, and at
// least the expected count when given) and this value must be among the
// least used.
func groupBy(c Constraint, val string, counts map[string]int, seen []map[string]string) error {
	if counts[val] == 0 {
		return nil
	}
	values := map[string]bool{val: true}
	for k := range counts {
		values[k] = true
	}
	for _, s := range seen {
		if v, ok := s[c.Field]; ok && !Public(s) {
			values[v] = true
		}
	}
	want := max(len(values), c.n)
	if len(counts) < want {
		var empty []string
		for v := range values {
			if counts[v] == 0 {
				empty = append(empty, v)
			}
		}
		sort.Strings(empty)
		if len(empty) == 0 {
			return fmt.Errorf("servers run in %d of the %d expected values of %s; waiting for an agent with another value", len(counts), want, c.Field)
		}
		return fmt.Errorf("%s=%s already has %d servers; %s first", c.Field, val, counts[val], strings.Join(empty, ", "))
	}
	least := counts[val]
	for _, n := range counts {
		least = min(least, n)
	}
	if counts[val] > least {
		return fmt.Errorf("%s=%s already has %d servers, another value has %d", c.Field, val, counts[val], least)
	}
	return nil
}

func countBy(field string, placed []map[string]string) map[string]int {
	out := map[string]int{}
	for _, p := range placed {
		if v, ok := p[field]; ok {
			out[v]++
		}
	}
	return out
}

// onlyKey is the most used key (ties: the smallest), for CLUSTER without a
// value: the servers follow the first one.
func onlyKey(counts map[string]int) string {
	best, bestN := "", -1
	for k, n := range counts {
		if n > bestN || (n == bestN && k < best) {
			best, bestN = k, n
		}
	}
	return best
}
