package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Recoverer is implemented by a source that can restart surviving servers
// with a raft peers.json (outage recovery).
type Recoverer interface {
	Recover(ctx context.Context, survivors []string, peers []taskspec.RaftPeer) error
}

// RecoverRequest is the body of POST /v1/recover.
type RecoverRequest struct {
	Survivors []string            `json:"survivors"`
	Peers     []taskspec.RaftPeer `json:"peers"`
}

func recoverRoute(mux *http.ServeMux, src Source) {
	rc, ok := src.(Recoverer)
	if !ok {
		return
	}
	mux.HandleFunc("/v1/recover", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			writeError(w, http.StatusMethodNotAllowed, "POST /v1/recover {survivors, peers} restarts the surviving servers with peers.json")
			return
		}
		var req RecoverRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf(`the body must be {"survivors": [...], "peers": [{"id", "address"}]}: %v`, err))
			return
		}
		if err := rc.Recover(r.Context(), req.Survivors, req.Peers); err != nil {
			snapshotError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, req)
	})
}
