package state

import (
	"sort"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

func sortedOld(ts Tasks) []Task {
	out := make([]Task, 0, len(ts))
	for _, t := range ts {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Role != b.Role {
			return a.Role == taskspec.RoleServer
		}
		if a.Role == taskspec.RoleServer {
			return a.Index < b.Index
		}
		return a.Name < b.Name
	})
	return out
}

func BenchmarkSortedOld10000(b *testing.B) {
	ts := scaleTasks(3, 9997)
	for i := 0; i < b.N; i++ {
		sortedOld(ts)
	}
}
