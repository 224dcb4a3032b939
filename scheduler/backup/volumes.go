package backup

import (
	"context"
	"fmt"
	"sort"
)

// ExecutorPath is the scheduler route through which a server's executor
// keeps copies of the snapshots on its persistent volume: POST with its
// Report gets an Offer; GET <ExecutorPath>/<name> downloads a snapshot;
// PUT <ExecutorPath>/<name> uploads a copy the scheduler asked for. Every
// call carries ?task_id= and the task's credential (Authorization:
// Bearer), as for its secrets.
const ExecutorPath = "/v1/executor/snapshots"

// VolumeDir is the directory of the copies on a server's volume, inside
// its data directory.
const VolumeDir = "snapshots"

// Report is what an executor has on its volume.
type Report struct {
	Have []Entry `json:"have"`
}

// Offer is the scheduler's answer to a Report: the newest snapshot to
// copy (nil: none yet), how many to keep, and the name of a copy to
// upload for a restore ("" when none is wanted).
type Offer struct {
	Latest *Entry `json:"latest,omitempty"`
	Keep   int    `json:"keep"`
	Upload string `json:"upload,omitempty"`
}

// Merge lists the snapshots of a target (where names it; "" when there is
// none) and of the servers' volumes (server → entries) as one list, oldest
// first, each with the places it is in. A copy whose checksum differs
// from the target's is listed on its own line (it is another snapshot).
func Merge(target []Entry, where string, volumes map[string][]Entry) []Entry {
	byKey := map[string]int{}
	var out []Entry
	add := func(e Entry, loc string) {
		k := e.Name + "/" + e.SHA256
		if i, ok := byKey[k]; ok {
			out[i].Locations = append(out[i].Locations, loc)
			if e.Taken.Before(out[i].Taken) {
				out[i].Taken = e.Taken
			}
			return
		}
		e.Locations = []string{loc}
		byKey[k] = len(out)
		out = append(out, e)
	}
	for _, e := range target {
		add(e, where)
	}
	servers := make([]string, 0, len(volumes))
	for s := range volumes {
		servers = append(servers, s)
	}
	sort.Strings(servers)
	for _, s := range servers {
		for _, e := range volumes[s] {
			add(e, "volume of "+s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name // names carry the time taken
		}
		return out[i].SHA256 < out[j].SHA256
	})
	return out
}

// KeepNewest deletes from t every snapshot but the keep newest (by name,
// which carries the time taken) and returns the names deleted.
func KeepNewest(ctx context.Context, t Target, keep int) ([]string, error) {
	es, err := t.List(ctx)
	if err != nil {
		return nil, err
	}
	if keep < 1 || len(es) <= keep {
		return nil, nil
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	var gone []string
	for _, e := range es[:len(es)-keep] {
		if err := t.Delete(ctx, e.Name); err != nil {
			return gone, fmt.Errorf("delete %s: %w", e.Name, err)
		}
		gone = append(gone, e.Name)
	}
	return gone, nil
}
