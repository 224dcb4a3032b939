package state

import (
	"encoding/json"
	"fmt"
	"math"
)

// DecodeTarget reads a stored target record. A record that does not parse,
// or whose numbers could not have come from a valid configuration, is an
// error naming what is wrong.
func DecodeTarget(b []byte) (Target, error) {
	var t Target
	if err := json.Unmarshal(b, &t); err != nil {
		return Target{}, fmt.Errorf("not a target configuration (%v)", err)
	}
	if t.Servers < 1 {
		return Target{}, fmt.Errorf("servers %d: want at least 1", t.Servers)
	}
	for name, v := range map[string]float64{
		"server.cpus": t.Server.CPUs, "server.mem": t.Server.Mem, "server.disk": t.Server.Disk,
		"client.cpus": t.Client.CPUs, "client.mem": t.Client.Mem,
	} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return Target{}, fmt.Errorf("%s %v: want a finite number, at least 0", name, v)
		}
	}
	return t, nil
}

// DecodeTask reads the stored record of task name.
func DecodeTask(name string, b []byte) (Task, error) {
	var t Task
	if err := json.Unmarshal(b, &t); err != nil {
		return Task{}, fmt.Errorf("not a task record (%v)", err)
	}
	if t.Name != name {
		return Task{}, fmt.Errorf("names task %q", t.Name)
	}
	return t, nil
}
