package dev

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/cosmos"
)

// TestEnvChanges: options rendered through the package's template, as
// Cosmos would, change exactly the scheduler variables they feed.
func TestEnvChanges(t *testing.T) {
	pkg, err := devPackage()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{opts: Options{Servers: 3}}
	base := c.baseOptions()
	for _, tc := range []struct {
		user string
		want string
	}{
		{`{"servers": {"cpus": 0.25}}`, "[SERVER_CPUS=0.25]"},
		{`{"servers": {"count": 5}, "clients": {"update_batch_percent": 20}}`, "[SERVER_COUNT=5 CLIENT_UPDATE_BATCH_PERCENT=20]"},
		{`{}`, "[]"},
	} {
		u, err := cosmos.DecodeJSON(strings.NewReader(tc.user))
		if err != nil {
			t.Fatal(err)
		}
		got, err := envChanges(pkg, base, cosmos.Merge(base, u.(map[string]any)))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("%s: %v, want %s", tc.user, got, tc.want)
		}
	}
	bad, _ := cosmos.DecodeJSON(strings.NewReader(`{"servers": {"count": 4}}`))
	if _, err := pkg.Options(cosmos.Merge(base, bad.(map[string]any))); err == nil {
		t.Errorf("servers.count 4 accepted")
	}
}
