package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// EnvCosmosURL points `update start` at a Cosmos other than the DC/OS
// cluster's own: `dcos-consul dev` prints its stand-in's address.
const EnvCosmosURL = "DCOS_CONSUL_COSMOS_URL"

// CosmosBase is where `update start` sends the update: cosmosURL (flag or
// DCOS_CONSUL_COSMOS_URL) if set, else the DC/OS cluster the scheduler was
// located through (<DCOS_URL> of <DCOS_URL>/service/<name>).
func (c *Commands) CosmosBase(cosmosURL string) (string, error) {
	if cosmosURL != "" {
		return strings.TrimRight(cosmosURL, "/"), nil
	}
	loc := c.Client.Location()
	if loc.Service != "" {
		if base, ok := strings.CutSuffix(loc.BaseURL, "/service/"+loc.Service); ok {
			return base, nil
		}
	}
	return "", errors.New("no Cosmos to send the update to: on DC/OS run it as `dcos consul update start`; with `dcos-consul dev` set " +
		EnvCosmosURL + " (dev prints it) or pass --cosmos")
}

// UpdateStart asks Cosmos to update the service with options (a JSON
// object, merged over the current options unless replace): Cosmos renders
// the package again and Marathon restarts the scheduler with the new
// environment, which then rolls the change out (`update status`).
func (c *Commands) UpdateStart(ctx context.Context, cosmosURL, service string, options []byte, replace bool) error {
	var opts map[string]any
	if err := json.Unmarshal(options, &opts); err != nil || opts == nil {
		return fmt.Errorf("the options are not a JSON object: %v", err)
	}
	base, err := c.CosmosBase(cosmosURL)
	if err != nil {
		return err
	}
	req, err := json.Marshal(map[string]any{"appId": "/" + strings.TrimPrefix(service, "/"), "options": opts, "replace": replace})
	if err != nil {
		return err
	}
	r, err := c.Client.CosmosUpdate(ctx, base, req)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.raw(r)
	}
	var res struct {
		DeploymentID string `json:"marathonDeploymentId"`
	}
	_ = json.Unmarshal(r.Body, &res)
	fmt.Fprintf(c.Out, "Update started (deployment %s): the scheduler restarts with the new options and rolls them out.\n", res.DeploymentID)
	fmt.Fprintln(c.Out, "Follow it with `update status` (the update plan); `plan pause update` holds it.")
	return nil
}
