package offers

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

// attrValue returns an agent's value for a Marathon constraint field.
func attrValue(o mesos.Offer, field string) (string, bool) {
	if field == "hostname" {
		return o.Hostname, true
	}
	for _, a := range o.Attributes {
		if a.Name != field {
			continue
		}
		switch {
		case a.Text != nil:
			return a.Text.Value, true
		case a.Scalar != nil:
			return strconv.FormatFloat(a.Scalar.Value, 'f', -1, 64), true
		case a.Ranges != nil:
			return describePorts(a.Ranges.Range), true
		case a.Set != nil:
			return "{" + strings.Join(a.Set.Item, ",") + "}", true
		}
	}
	return "", false
}

// checkPlacement applies the Marathon-style server placement constraints.
// peers are the other servers' agents' values, keyed by field, as seen
// when they were placed (only hostname is known for them: other
// attributes of other agents are not in this offer, so UNIQUE and MAX_PER
// on attributes compare against the values recorded in attrs).
func checkPlacement(cons [][]string, o mesos.Offer, servers []state.Task, attrs map[string]map[string]string) error {
	for _, c := range cons {
		if len(c) < 2 {
			continue
		}
		field, op := c[0], strings.ToUpper(c[1])
		val, has := attrValue(o, field)
		arg := ""
		if len(c) > 2 {
			arg = c[2]
		}
		count := 0
		for _, s := range servers {
			if s.AgentID == "" || s.Role != taskspec.RoleServer {
				continue
			}
			other := attrs[s.AgentID][field]
			if field == "hostname" {
				other = s.Hostname
			}
			if has && other == val {
				count++
			}
		}
		switch op {
		case "UNIQUE":
			if count > 0 {
				return fmt.Errorf("constraint [%s UNIQUE]: another server already has %s=%s", field, field, val)
			}
		case "CLUSTER":
			if !has || (arg != "" && val != arg) {
				return fmt.Errorf("constraint [%s CLUSTER %s]: agent has %s=%q", field, arg, field, val)
			}
		case "LIKE", "UNLIKE":
			re, err := regexp.Compile("^(?:" + arg + ")$")
			if err != nil {
				return fmt.Errorf("constraint [%s %s %s]: bad regular expression: %v", field, op, arg, err)
			}
			match := has && re.MatchString(val)
			if op == "LIKE" && !match {
				return fmt.Errorf("constraint [%s LIKE %s]: agent has %s=%q", field, arg, field, val)
			}
			if op == "UNLIKE" && match {
				return fmt.Errorf("constraint [%s UNLIKE %s]: agent has %s=%q", field, arg, field, val)
			}
		case "MAX_PER":
			n, err := strconv.Atoi(arg)
			if err != nil {
				return fmt.Errorf("constraint [%s MAX_PER %s]: not a number", field, arg)
			}
			if count >= n {
				return fmt.Errorf("constraint [%s MAX_PER %d]: %d servers already have %s=%s", field, n, count, field, val)
			}
		case "GROUP_BY", "IS":
			if op == "IS" && (!has || val != arg) {
				return fmt.Errorf("constraint [%s IS %s]: agent has %s=%q", field, arg, field, val)
			}
		default:
			return fmt.Errorf("constraint [%s %s]: unknown operator", field, op)
		}
	}
	return nil
}
