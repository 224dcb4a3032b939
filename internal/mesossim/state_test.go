package mesossim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// The structs Mesos-DNS (records/state/state.go) decodes /master/state
// into; any type mismatch or unparsable pid fails its whole document.
type dnsPID struct{ Host, Port string }

func (p *dnsPID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	at := strings.Index(s, "@")
	colon := strings.LastIndex(s, ":")
	if at <= 0 || colon < at {
		return fmt.Errorf("bad UPID %q", s)
	}
	if _, err := strconv.Atoi(s[colon+1:]); err != nil {
		return fmt.Errorf("bad UPID port %q", s)
	}
	p.Host, p.Port = s[at+1:colon], s[colon+1:]
	return nil
}

type dnsState struct {
	Frameworks []struct {
		Tasks []struct {
			FrameworkID string `json:"framework_id"`
			ID          string `json:"id"`
			Name        string `json:"name"`
			SlaveID     string `json:"slave_id"`
			State       string `json:"state"`
			Statuses    []struct {
				Timestamp float64 `json:"timestamp"`
				State     string  `json:"state"`
				Labels    []struct {
					Key   string `json:"key"`
					Value string `json:"value"`
				} `json:"labels,omitempty"`
				ContainerStatus struct {
					NetworkInfos []struct {
						IPAddresses []struct {
							IPAddress string `json:"ip_address,omitempty"`
						} `json:"ip_addresses,omitempty"`
					} `json:"network_infos,omitempty"`
				} `json:"container_status,omitempty"`
			} `json:"statuses"`
			Resources struct {
				PortRanges string `json:"ports"`
			} `json:"resources"`
			DiscoveryInfo struct {
				Visibility string `json:"visibility"`
				Name       string `json:"name"`
				Ports      struct {
					DiscoveryPorts []struct {
						Protocol string `json:"protocol"`
						Number   int    `json:"number"`
						Name     string `json:"name"`
					} `json:"ports"`
				} `json:"ports"`
			} `json:"discovery"`
		} `json:"tasks"`
		PID      *dnsPID `json:"pid"`
		Name     string  `json:"name"`
		Hostname string  `json:"hostname"`
	} `json:"frameworks"`
	Slaves []struct {
		ID       string `json:"id"`
		Hostname string `json:"hostname"`
		PID      dnsPID `json:"pid"`
	} `json:"slaves"`
	Leader string `json:"leader"`
}

// Fact 12 and 07-master-state.json: a running task with ports, read the way
// Mesos-DNS reads it.
func TestMasterStateForMesosDNS(t *testing.T) {
	c := startCluster(t, testOptions(t, 2, true))
	s := subscribe(t, c.MasterURL(), paInfo("consul"))
	a := c.Agents()[0]
	o := offerFrom(t, s, a.ID)
	task := taskInfo("consul-server-0", a.ID, customExecutor("e", role), res("cpus", 0.1, role), res("mem", 64, role),
		mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), Ranges: &mesos.Value_Ranges{Range: []mesos.Value_Range{{Begin: 31000, End: 31000}, {Begin: 31005, End: 31006}}},
			AllocationInfo: &mesos.Resource_AllocationInfo{Role: strPtr(role)}})
	vis := mesos.FRAMEWORK
	task.Discovery = &mesos.DiscoveryInfo{Visibility: vis, Name: strPtr("consul-0"),
		Ports: &mesos.Ports{Ports: []mesos.Port{{Number: 8500, Name: strPtr("http"), Protocol: strPtr("tcp")}}}}
	s.accept([]mesos.Offer{o}, 0, launch(task))
	s.ack(s.update("consul-server-0", waitLong))
	s.ack(s.update("consul-server-0", waitLong))

	for _, path := range []string{"/master/state", "/state", "/master/state.json"} {
		resp, err := http.Get(c.MasterURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var st dnsState
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("%s: Mesos-DNS would reject the document: %v", path, err)
		}
		if st.Leader != "master@127.1.0.1:"+strings.TrimPrefix(c.MasterURL(), "http://127.1.0.1:") {
			t.Errorf("leader %q", st.Leader)
		}
		if len(st.Slaves) != 2 {
			t.Fatalf("slaves %d", len(st.Slaves))
		}
		for _, sl := range st.Slaves {
			if sl.PID.Port != itoa(c.Agents()[0].Port) || (sl.PID.Host != c.Agents()[0].IP && sl.PID.Host != c.Agents()[1].IP) {
				t.Errorf("slave pid %+v", sl.PID)
			}
		}
		if len(st.Frameworks) != 1 || st.Frameworks[0].Name != "consul" || st.Frameworks[0].PID != nil {
			t.Fatalf("frameworks %+v", st.Frameworks)
		}
		tk := st.Frameworks[0].Tasks[0]
		if tk.State != "TASK_RUNNING" || tk.SlaveID != a.ID || tk.Resources.PortRanges != "[31000-31000, 31005-31006]" || tk.Name != "consul-server-0" {
			t.Errorf("task %+v", tk)
		}
		if tk.DiscoveryInfo.Name != "consul-0" || tk.DiscoveryInfo.Ports.DiscoveryPorts[0].Number != 8500 {
			t.Errorf("discovery %+v", tk.DiscoveryInfo)
		}
		last := tk.Statuses[len(tk.Statuses)-1]
		if last.State != "TASK_RUNNING" || last.Timestamp == 0 {
			t.Errorf("statuses %+v", tk.Statuses)
		}
		// Mesos-DNS's netinfo source: the agent-filled container_status.
		if n := last.ContainerStatus.NetworkInfos; len(n) == 0 || len(n[0].IPAddresses) == 0 || n[0].IPAddresses[0].IPAddress != a.IP {
			t.Errorf("container_status of the RUNNING status: %+v", last.ContainerStatus)
		}
	}
	// The generic shape: resources objects with numbers, ports as strings.
	st := getState(t, c.MasterURL())
	slave := st["slaves"].([]interface{})[0].(map[string]interface{})
	r := slave["resources"].(map[string]interface{})
	if r["cpus"].(float64) != 4 || r["ports"].(string) != "[8000-9000, 31000-32000]" || r["gpus"].(float64) != 0 {
		t.Errorf("slave resources %v", r)
	}
	if st["activated_slaves"].(float64) != 2 || st["id"].(string) != c.MasterID() {
		t.Errorf("master state header: %v %v", st["activated_slaves"], st["id"])
	}
	fw := st["frameworks"].([]interface{})[0].(map[string]interface{})
	if fw["active"] != true || fw["connected"] != true || fw["roles"].([]interface{})[0] != role || fw["principal"] != "consul-principal" {
		t.Errorf("framework %v", fw)
	}

	// TEARDOWN (08): the stream ends with no event; the framework moves to
	// completed_frameworks with its task KILLED; SUBSCRIBE with its ID is
	// refused; later calls get 400.
	s.mustCall(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
	for ev := range s.events {
		if ev.Type != scheduler.Event_HEARTBEAT && ev.Type != scheduler.Event_OFFERS && ev.Type != scheduler.Event_RESCIND {
			t.Errorf("event after TEARDOWN: %s", ev.Type)
		}
	}
	st = getState(t, c.MasterURL())
	if len(st["frameworks"].([]interface{})) != 0 || len(st["completed_frameworks"].([]interface{})) != 1 {
		t.Fatalf("after teardown: %d frameworks, %d completed", len(st["frameworks"].([]interface{})), len(st["completed_frameworks"].([]interface{})))
	}
	cf := st["completed_frameworks"].([]interface{})[0].(map[string]interface{})
	ct := cf["completed_tasks"].([]interface{})[0].(map[string]interface{})
	if cf["active"] != false || ct["state"] != "TASK_KILLED" || cf["unregistered_time"].(float64) == 0 {
		t.Errorf("completed framework %v task %v", cf["active"], ct["state"])
	}
	if code, body := s.call(&scheduler.Call{Type: scheduler.Call_RECONCILE, Reconcile: &scheduler.Call_Reconcile{}}); code != 400 || body != "Framework cannot be found" {
		t.Errorf("call after teardown: %d %q", code, body)
	}
	info := paInfo("consul")
	info.ID = &mesos.FrameworkID{Value: s.fwID}
	s2 := subscribeRaw(t, c.MasterURL(), info)
	if ev := s2.next(scheduler.Event_ERROR, waitLong); ev.Error.Message != "Framework has been removed" {
		t.Errorf("re-subscribe after teardown: %q", ev.Error.Message)
	}
	eventually(t, waitLong, "executor shut down", func() bool {
		exs, _ := c.Executors(a.ID)
		return len(exs) == 0
	})
}
