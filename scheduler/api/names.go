package api

import (
	"github.com/dcos-consul/dcos-consul/internal/mesosdns"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
)

func taskHost(task string, t state.Target) string {
	return mesosdns.TaskHost(task, t.ServiceName, t.MesosDNSDomain)
}
