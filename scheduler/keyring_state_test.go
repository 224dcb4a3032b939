package scheduler

import (
	"testing"

	consulapi "github.com/hashicorp/consul/api"
)

// The rotation skips what this datacenter's agents show done already
// (another federated datacenter's rotation reaches them too), and only
// that: the WAN ring, other datacenters and an unreadable listing count
// for nothing.
func TestLANKeyringState(t *testing.T) {
	rings := []*consulapi.KeyringResponse{
		{WAN: true, Datacenter: "dc2", Keys: map[string]int{"new": 4}, PrimaryKeys: map[string]int{"new": 4}, NumNodes: 4},
		{Datacenter: "dc1", Keys: map[string]int{"new": 3}, PrimaryKeys: map[string]int{"new": 3}, NumNodes: 3},
		{Datacenter: "dc2", Keys: map[string]int{"new": 2, "old": 1}, PrimaryKeys: map[string]int{"new": 1, "old": 1}, NumNodes: 2},
	}
	k := lanKeyring(rings, "dc2")
	if k.primaryEverywhere("new") || k.gone("old") || k.gone("new") {
		t.Fatalf("dc2 half switched: %+v", k)
	}
	rings[2].Keys, rings[2].PrimaryKeys = map[string]int{"new": 2}, map[string]int{"new": 2}
	k = lanKeyring(rings, "dc2")
	if !k.primaryEverywhere("new") || !k.gone("old") || k.gone("new") {
		t.Fatalf("dc2 switched: %+v", k)
	}
	if k := lanKeyring(rings, "dc3"); k.primaryEverywhere("new") || k.gone("old") {
		t.Fatal("a datacenter not listed counts as done")
	}
	if k := lanKeyring(nil, "dc2"); k.primaryEverywhere("new") || k.gone("old") {
		t.Fatal("an unread keyring counts as done")
	}
}
