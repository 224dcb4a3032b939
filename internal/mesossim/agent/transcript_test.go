package agent

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/stoutjson"
)

// Records of 09-executor-happy-path.txt (real Mesos 1.12.0), verbatim.
const (
	realExecSubscribed = `{"type":"SUBSCRIBED","subscribed":{"executor_info":{"type":"CUSTOM","executor_id":{"value":"e9"},"framework_id":{"value":"e6922113-59b7-4c1f-9b75-e01bd097f100-0000"},"command":{"shell":true,"value":"/usr/bin/python3 <fixtures>/executor.py"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1},"allocation_info":{"role":"*"}},{"name":"mem","type":"SCALAR","scalar":{"value":32.0},"allocation_info":{"role":"*"}}],"name":"tiny-executor"},"framework_info":{"user":"root","name":"exec-fixture","id":{"value":"e6922113-59b7-4c1f-9b75-e01bd097f100-0000"},"failover_timeout":604800.0,"checkpoint":true,"capabilities":[{"type":"PARTITION_AWARE"},{"type":"TASK_KILLING_STATE"}]},"agent_info":{"hostname":"127.0.0.31","port":5071,"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":4.0}},{"name":"mem","type":"SCALAR","scalar":{"value":8192.0}},{"name":"disk","type":"SCALAR","scalar":{"value":20000.0}},{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":8000,"end":9000},{"begin":31000,"end":32000}]}}],"id":{"value":"e6922113-59b7-4c1f-9b75-e01bd097f100-S0"}},"container_id":{"value":"92ea1d14-6005-4711-8d23-96f8d20ac3d0"}}}`
	realExecLaunch     = `{"type":"LAUNCH","launch":{"task":{"name":"t9a","task_id":{"value":"t9a"},"agent_id":{"value":"e6922113-59b7-4c1f-9b75-e01bd097f100-S0"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1},"allocation_info":{"role":"*"}},{"name":"mem","type":"SCALAR","scalar":{"value":32.0},"allocation_info":{"role":"*"}}],"executor":{"type":"CUSTOM","executor_id":{"value":"e9"},"framework_id":{"value":"e6922113-59b7-4c1f-9b75-e01bd097f100-0000"},"command":{"shell":true,"value":"/usr/bin/python3 <fixtures>/executor.py"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.1},"allocation_info":{"role":"*"}},{"name":"mem","type":"SCALAR","scalar":{"value":32.0},"allocation_info":{"role":"*"}}],"name":"tiny-executor"}}}}`
)

var execVolatile = map[string]bool{
	"subscribed.executor_info.framework_id.value": true,
	"subscribed.executor_info.command.value":      true,
	"subscribed.framework_info.id.value":          true,
	"subscribed.agent_info.hostname":              true,
	"subscribed.agent_info.port":                  true,
	"subscribed.agent_info.id.value":              true,
	"subscribed.container_id.value":               true,
	"launch.task.agent_id.value":                  true,
	"launch.task.executor.framework_id.value":     true,
	"launch.task.executor.command.value":          true,
}

// The executor's SUBSCRIBED and LAUNCH say what a real 1.12 agent says
// (09-executor-happy-path.txt): same keys, same order, same values (IDs,
// addresses and the executor's command aside), numbers written as 32.0.
func TestExecutorEventsAsRealAgent(t *testing.T) {
	a, _ := newTestAgent(t, func(c *Config) {
		c.Resources = append(c.Resources, mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(),
			Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 8000, End: 9000}, {Begin: 31000, End: 32000}}}})
	})
	star := func(r mesos.Resource) mesos.Resource {
		role := "*"
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: &role}
		return r
	}
	ex := sleeperExecutor("e9")
	ex.Resources = []mesos.Resource{star(scalar("cpus", 0.1)), star(scalar("mem", 32))}
	task := taskInfo(a, "t9a", "")
	task.Resources = []mesos.Resource{star(scalar("cpus", 0.1)), star(scalar("mem", 32))}
	task.Executor = &ex
	launch(a, ex, task)
	s := rawSubscribe(t, a, "application/json", "", subscribeBody("e9"))
	for _, want := range []string{realExecSubscribed, realExecLaunch} {
		got := string(s.chunk())
		g, err1 := stoutjson.Mask(got, execVolatile)
		w, err2 := stoutjson.Mask(want, execVolatile)
		if err1 != nil || err2 != nil || g != w {
			t.Errorf("executor event\n got %s\nwant %s (%v %v)", g, w, err1, err2)
		}
	}
}
