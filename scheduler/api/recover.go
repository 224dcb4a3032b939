package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/recovery"
)

// Recoverer is implemented by a source that can restart surviving servers
// with a raft peers.json and replace the lost ones (outage recovery).
type Recoverer interface {
	// Recover says which survivors restart with which peers, and which
	// lost servers will be replaced.
	Recover(ctx context.Context, survivors []string, peers []taskspec.RaftPeer) (RecoverResponse, error)
	// RecoverStatus is the scheduler's latest verdict on the quorum.
	RecoverStatus() *recovery.Quorum
}

// RecoverRequest is the body of POST /v1/recover. Both empty: the
// scheduler's own verdict names the survivors and their peers.
type RecoverRequest struct {
	Survivors []string            `json:"survivors"`
	Peers     []taskspec.RaftPeer `json:"peers"`
}

// RecoverResponse answers POST /v1/recover.
type RecoverResponse struct {
	RecoverRequest
	Replaced []string `json:"replaced"`
}

func recoverRoute(mux *http.ServeMux, src Source) {
	rc, ok := src.(Recoverer)
	if !ok {
		return
	}
	mux.HandleFunc("/v1/recover", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			q := rc.RecoverStatus()
			if q == nil {
				writeError(w, http.StatusServiceUnavailable, "the scheduler has not asked the servers for their raft state yet; retry in a few seconds")
				return
			}
			writeJSON(w, http.StatusOK, q)
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, "GET /v1/recover is the scheduler's verdict on the quorum; POST /v1/recover {survivors, peers} restarts the surviving servers with peers.json and replaces the lost ones")
			return
		}
		var req RecoverRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf(`the body must be {"survivors": [...], "peers": [{"id", "address"}]} or empty: %v`, err))
			return
		}
		res, err := rc.Recover(r.Context(), req.Survivors, req.Peers)
		if err != nil {
			if errors.Is(err, ErrConflict) {
				writeError(w, http.StatusConflict, err.Error())
				return
			}
			snapshotError(w, err)
			return
		}
		res.Replaced = orEmpty(res.Replaced)
		writeJSON(w, http.StatusOK, res)
	})
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
