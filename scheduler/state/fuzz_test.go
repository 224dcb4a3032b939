package state

import (
	"encoding/json"
	"testing"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// FuzzStoredRecords: any bytes stored under the target, config or a task
// key are refused with an error, or decode to a record that can be stored
// again (a record that loads but cannot be written would fail every flush).
func FuzzStoredRecords(f *testing.F) {
	c := config.Defaults()
	tg := TargetFrom(c)
	tb, _ := json.Marshal(tg)
	cb, _ := json.Marshal(c)
	task := Task{Name: "consul-server-0", TaskID: "consul-server-0__a", AgentID: "S1", State: "TASK_RUNNING",
		Reservation: &Reservation{ID: "r", PersistenceID: "p"}, AgentValues: map[string]string{"@zone": "a"}}
	kb, _ := json.Marshal(task)
	for _, b := range [][]byte{tb, cb, kb, nil, []byte(`{}`), []byte(`null`), []byte(`{"servers":3,"server":{"cpus":1e999}}`),
		[]byte(`{"name":"consul-server-0","launched_at":"10000-01-01T00:00:00Z"}`)} {
		f.Add(uint8(0), b)
		f.Add(uint8(1), b)
		f.Add(uint8(2), b)
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		var v any
		var err error
		switch kind % 3 {
		case 0:
			v, err = DecodeTarget(b)
		case 1:
			v, err = config.DecodeStored(b)
		default:
			v, err = DecodeTask("consul-server-0", b)
		}
		if err != nil {
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("a decoded record cannot be stored again: %v", err)
		}
	})
}
