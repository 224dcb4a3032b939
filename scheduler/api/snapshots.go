package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dcos-consul/dcos-consul/scheduler/backup"
)

// Snapshots is implemented by a source that keeps Consul snapshots.
type Snapshots interface {
	SnapshotList(ctx context.Context) ([]backup.Entry, error)
	SnapshotSave(ctx context.Context) (backup.Entry, error)
	SnapshotRestore(ctx context.Context, name string) error
}

// ErrBadRequest wraps errors of the request itself (400).
var ErrBadRequest = errors.New("bad request")

// ErrUnavailable wraps errors that a retry later may not have (503): no
// Consul server runs, no target is configured.
var ErrUnavailable = errors.New("unavailable")

// snapshotRoutes: GET /v1/snapshots lists, POST /v1/snapshots takes one
// now, POST /v1/snapshots/<name>/restore restores one into the cluster.
func snapshotRoutes(mux *http.ServeMux, src Source) {
	sn, ok := src.(Snapshots)
	if !ok {
		return
	}
	mux.HandleFunc("/v1/snapshots", func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			es, err := sn.SnapshotList(r.Context())
			if err != nil {
				snapshotError(w, err)
				return
			}
			if es == nil {
				es = []backup.Entry{}
			}
			writeJSON(w, http.StatusOK, es)
		case http.MethodPost:
			e, err := sn.SnapshotSave(r.Context())
			if err != nil {
				snapshotError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, e)
		default:
			w.Header().Set("Allow", "GET, POST")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: GET lists the snapshots, POST takes one", r.Method, r.URL.Path))
		}
	})
	mux.HandleFunc("/v1/snapshots/", func(w http.ResponseWriter, r *http.Request) {
		name, verb, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/snapshots/"), "/")
		if !ok || verb != "restore" || r.Method != http.MethodPost {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s: only POST /v1/snapshots/<name>/restore is served here", r.Method, r.URL.Path))
			return
		}
		if err := sn.SnapshotRestore(r.Context(), name); err != nil {
			snapshotError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"restored": name})
	})
}

func snapshotError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusBadGateway, err.Error())
	}
}
