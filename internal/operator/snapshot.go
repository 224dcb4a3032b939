package operator

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// Snapshot is one stored Consul snapshot (GET /v1/snapshots).
type Snapshot struct {
	Name   string    `json:"name"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
	Taken  time.Time `json:"taken"`
	// Locations: where its copies are (the backup target, servers' volumes).
	Locations []string `json:"locations,omitempty"`
}

// SnapshotSave has the scheduler take a snapshot from Consul's leader now
// and store it in its backup target.
func (c *Commands) SnapshotSave(ctx context.Context) error {
	r, err := c.Client.Post(ctx, "/v1/snapshots")
	if err != nil {
		return err
	}
	var s Snapshot
	if err := decode(r, "/v1/snapshots", &s); err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	fmt.Fprintf(c.Out, "Saved snapshot %s (%d bytes, sha256 %s)\n", s.Name, s.Size, s.SHA256)
	return nil
}

// SnapshotList shows the stored snapshots, oldest first.
func (c *Commands) SnapshotList(ctx context.Context) error {
	r, err := c.Client.Get(ctx, "/v1/snapshots")
	if err != nil {
		return err
	}
	var ss []Snapshot
	if err := decode(r, "/v1/snapshots", &ss); err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	if len(ss) == 0 {
		fmt.Fprintln(c.Out, "No snapshots yet (`snapshot save` takes one).")
		return nil
	}
	tw := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTAKEN\tBYTES\tSHA256\tWHERE")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, s.Taken.UTC().Format(time.RFC3339), s.Size, s.SHA256, strings.Join(s.Locations, ", "))
	}
	return tw.Flush()
}

// SnapshotRestore restores a stored snapshot into the running cluster: its
// whole state (KV, catalog, ACLs, sessions) is replaced by the snapshot's.
func (c *Commands) SnapshotRestore(ctx context.Context, name string) error {
	p := "/v1/snapshots/" + url.PathEscape(name) + "/restore"
	r, err := c.Client.Post(ctx, p)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	fmt.Fprintf(c.Out, "Restored snapshot %s into the running cluster\n", name)
	return nil
}
