package mesossim

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// validateCall is scheduler::call::validate (M/validation.cpp 725-898).
func validateCall(c *scheduler.Call) error {
	if c.Type == enumUnset {
		return errors.New("Expecting 'type' to be present")
	}
	if c.Type == scheduler.Call_SUBSCRIBE {
		if c.Subscribe == nil {
			return errors.New("Expecting 'subscribe' to be present")
		}
		infoID := c.Subscribe.FrameworkInfo.GetID().GetValue()
		callID := c.GetFrameworkID().GetValue()
		if (c.Subscribe.FrameworkInfo.ID == nil) != (c.FrameworkID == nil) || infoID != callID {
			return errors.New("'framework_id' differs from 'subscribe.framework_info.id'")
		}
		return nil
	}
	if c.FrameworkID == nil {
		return errors.New("Expecting 'framework_id' to be present")
	}
	need := func(present bool, name string) error {
		if !present {
			return fmt.Errorf("Expecting '%s' to be present", name)
		}
		return nil
	}
	switch c.Type {
	case scheduler.Call_ACCEPT:
		return need(c.Accept != nil, "accept")
	case scheduler.Call_DECLINE:
		return need(c.Decline != nil, "decline")
	case scheduler.Call_ACCEPT_INVERSE_OFFERS:
		return need(c.AcceptInverseOffers != nil, "accept_inverse_offers")
	case scheduler.Call_DECLINE_INVERSE_OFFERS:
		return need(c.DeclineInverseOffers != nil, "decline_inverse_offers")
	case scheduler.Call_KILL:
		return need(c.Kill != nil, "kill")
	case scheduler.Call_SHUTDOWN:
		return need(c.Shutdown != nil, "shutdown")
	case scheduler.Call_ACKNOWLEDGE:
		if err := need(c.Acknowledge != nil, "acknowledge"); err != nil {
			return err
		}
		return validUUID(c.Acknowledge.UUID)
	case scheduler.Call_ACKNOWLEDGE_OPERATION_STATUS:
		if err := need(c.AcknowledgeOperationStatus != nil, "acknowledge_operation_status"); err != nil {
			return err
		}
		if err := validUUID(c.AcknowledgeOperationStatus.UUID); err != nil {
			return err
		}
		if c.AcknowledgeOperationStatus.AgentID == nil {
			return errors.New("Expecting 'agent_id' to be present")
		}
	case scheduler.Call_RECONCILE:
		return need(c.Reconcile != nil, "reconcile")
	case scheduler.Call_RECONCILE_OPERATIONS:
		return need(c.ReconcileOperations != nil, "reconcile_operations")
	case scheduler.Call_MESSAGE:
		return need(c.Message != nil, "message")
	case scheduler.Call_REQUEST:
		return need(c.Request != nil, "request")
	case scheduler.Call_UPDATE_FRAMEWORK:
		if err := need(c.UpdateFramework != nil, "update_framework"); err != nil {
			return err
		}
		if c.UpdateFramework.FrameworkInfo.GetID().GetValue() != c.FrameworkID.Value {
			return errors.New("'framework_id' differs from 'update_framework.framework_info.id'")
		}
	}
	return nil
}

// validUUID is stout's UUID::fromBytes: 16 bytes and a known version.
func validUUID(b []byte) error {
	if len(b) != 16 {
		return errors.New("Not a valid UUID")
	}
	if v := b[6] >> 4; v < 1 || v > 5 {
		return errors.New("Not a valid UUID")
	}
	return nil
}

// validateRole is roles::validate (C/roles.cpp).
func validateRole(role string) error {
	if role == "*" {
		return nil
	}
	if strings.HasPrefix(role, "/") {
		return fmt.Errorf("Role '%s' cannot start with a slash", role)
	}
	if strings.HasSuffix(role, "/") {
		return fmt.Errorf("Role '%s' cannot end with a slash", role)
	}
	for _, c := range strings.Split(role, "/") {
		switch {
		case c == "":
			return fmt.Errorf("Role '%s' cannot contain two adjacent slashes", role)
		case c == ".":
			return fmt.Errorf("Role '%s' cannot contain . as a component", role)
		case c == "..":
			return fmt.Errorf("Role '%s' cannot contain .. as a component", role)
		case c == "*":
			return fmt.Errorf("Role '%s' cannot contain * as a component", role)
		case strings.HasPrefix(c, "-"):
			return fmt.Errorf("Role component '%s' is invalid because it starts with a dash", c)
		case strings.ContainsAny(c, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f "):
			return fmt.Errorf("Role component '%s' is invalid because it contains backspace or whitespace", c)
		}
	}
	return nil
}

// validateID is common::validation::validateID.
func validateID(id string) error {
	switch {
	case id == "":
		return errors.New("ID must not be empty")
	case len(id) > 255:
		return errors.New("ID must not be greater than 255 characters")
	case id == "." || id == "..":
		return fmt.Errorf("'%s' is disallowed", id)
	case strings.ContainsAny(id, "/\\"):
		return errors.New("'/' and '\\' are disallowed")
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return errors.New("ID must not contain control characters")
		}
	}
	return nil
}

// validateFrameworkInfo is framework::validate (M/validation.cpp 470-720):
// the refusal reasons of a SUBSCRIBE.
func validateFrameworkInfo(info *mesos.FrameworkInfo, suppressed []string) error {
	multi := hasCapability(info, mesos.FrameworkInfo_Capability_MULTI_ROLE)
	if multi {
		if info.Role != nil {
			return errors.New("'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable")
		}
	} else if len(info.Roles) > 0 {
		return errors.New("'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable")
	}
	if multi {
		seen := map[string]bool{}
		var dups []string
		for _, r := range info.Roles {
			if seen[r] {
				dups = append(dups, r)
			}
			seen[r] = true
		}
		if len(dups) > 0 {
			sort.Strings(dups)
			return fmt.Errorf("'FrameworkInfo.roles' contains duplicate items: { %s }", strings.Join(dups, ", "))
		}
		for _, r := range info.Roles {
			if err := validateRole(r); err != nil {
				return fmt.Errorf("'FrameworkInfo.roles' contains invalid role: %v", err)
			}
		}
	} else {
		role := "*"
		if info.Role != nil {
			role = *info.Role
		}
		if err := validateRole(role); err != nil {
			return fmt.Errorf("'FrameworkInfo.role' is not a valid role: %v", err)
		}
	}
	if info.ID != nil {
		if err := validateID(info.ID.Value); err != nil {
			return fmt.Errorf("'FrameworkInfo.id' is invalid: %v", err)
		}
	}
	if ft := info.GetFailoverTimeout(); math.IsNaN(ft) || math.IsInf(ft, 0) || math.Abs(ft) > 9.2e9 {
		return fmt.Errorf("Invalid 'FrameworkInfo.failover_timeout': %v", ft)
	}
	roles, _ := frameworkRoles(info)
	have := map[string]bool{}
	for _, r := range roles {
		have[r] = true
	}
	for _, r := range suppressed {
		if !have[r] {
			return fmt.Errorf("Suppressed role '%s' is not contained in the list of roles", r)
		}
	}
	return nil
}
