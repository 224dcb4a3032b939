package mesossim

// The faults API over HTTP, on the master's address (not part of Mesos):
//
//	GET    /sim/v1/agents                                 list agents
//	POST   /sim/v1/agents                                 add an agent
//	DELETE /sim/v1/agents/<agent id>                      remove an agent
//	POST   /sim/v1/agents/<agent id>/partition?duration=30s
//	POST   /sim/v1/agents/<agent id>/restart?down=5s     agent process restart (recover=reconnect)
//	GET    /sim/v1/agents/<agent id>/executors            executors on an agent
//	POST   /sim/v1/agents/<agent id>/executors/kill?framework_id=F&executor_id=E
//	POST   /sim/v1/master/restart                         (answered before the restart)
//
// Answers are JSON; errors are text with 400 (bad request) or 404 (unknown agent).

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, code int, v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		textError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

func (c *Cluster) serveFaults(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/sim/v1/"), "/")
	parts := strings.Split(path, "/")
	fail := func(err error) {
		code := http.StatusBadRequest
		if strings.Contains(err.Error(), "unknown agent") {
			code = http.StatusNotFound
		}
		textError(w, code, err.Error())
	}
	switch {
	case path == "agents" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, c.Agents())
	case path == "agents" && r.Method == http.MethodPost:
		info, err := c.AddAgent()
		if err != nil {
			fail(err)
			return
		}
		writeJSON(w, http.StatusOK, info)
	case len(parts) == 2 && parts[0] == "agents" && r.Method == http.MethodDelete:
		if err := c.RemoveAgent(parts[1]); err != nil {
			fail(err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 3 && parts[0] == "agents" && parts[2] == "partition" && r.Method == http.MethodPost:
		d, err := time.ParseDuration(r.URL.Query().Get("duration"))
		if err != nil {
			textError(w, http.StatusBadRequest, "expecting ?duration=<Go duration, e.g. 30s>")
			return
		}
		if err := c.PartitionAgent(parts[1], d); err != nil {
			fail(err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 3 && parts[0] == "agents" && parts[2] == "restart" && r.Method == http.MethodPost:
		d, err := time.ParseDuration(r.URL.Query().Get("down"))
		if err != nil || d < 0 {
			textError(w, http.StatusBadRequest, "expecting ?down=<Go duration, e.g. 5s>")
			return
		}
		if err := c.RestartAgent(parts[1], d); err != nil {
			fail(err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 3 && parts[0] == "agents" && parts[2] == "executors" && r.Method == http.MethodGet:
		exs, err := c.Executors(parts[1])
		if err != nil {
			fail(err)
			return
		}
		type exJSON struct {
			FrameworkID string            `json:"framework_id"`
			ExecutorID  string            `json:"executor_id"`
			Directory   string            `json:"directory"`
			PID         int               `json:"pid"`
			Tasks       map[string]string `json:"tasks"`
		}
		out := []exJSON{}
		for _, e := range exs {
			x := exJSON{FrameworkID: e.Framework.Value, ExecutorID: e.Executor.Value, Directory: e.Directory, PID: e.PID, Tasks: map[string]string{}}
			for id, st := range e.Tasks {
				x.Tasks[id] = st.String()
			}
			out = append(out, x)
		}
		writeJSON(w, http.StatusOK, out)
	case len(parts) == 4 && parts[0] == "agents" && parts[2] == "executors" && parts[3] == "kill" && r.Method == http.MethodPost:
		q := r.URL.Query()
		if q.Get("framework_id") == "" || q.Get("executor_id") == "" {
			textError(w, http.StatusBadRequest, "expecting ?framework_id=...&executor_id=...")
			return
		}
		if err := c.KillExecutor(parts[1], q.Get("framework_id"), q.Get("executor_id")); err != nil {
			fail(err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case path == "master/restart" && r.Method == http.MethodPost:
		w.WriteHeader(http.StatusAccepted)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			if err := c.RestartMaster(); err != nil {
				c.log.Error("master restart failed")
			}
		}()
	default:
		textError(w, http.StatusNotFound, "no such simulator endpoint: "+r.Method+" "+r.URL.Path)
	}
}
