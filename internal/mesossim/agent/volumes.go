package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Persistent volumes live at <work>/volumes/roles/<role>/<persistence id>
// ('/' in a role becomes ' ', as in Mesos' slave/paths.cpp) and appear in a
// sandbox as a symlink at their container path, which must be a single
// relative path component (others are skipped, as the posix isolator does).
// They outlive tasks, executors and frameworks; only DestroyVolume removes
// them.

// CreateVolume makes a persistent volume's directory (CREATE).
func (a *Agent) CreateVolume(role, persistenceID string) error {
	if a.cfg.InProcess {
		return nil
	}
	p, err := a.volumePath(role, persistenceID)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("agent %s: create volume %s: %w", a.cfg.ID.Value, persistenceID, err)
	}
	return nil
}

// DestroyVolume deletes a persistent volume and its data (DESTROY).
func (a *Agent) DestroyVolume(role, persistenceID string) error {
	if a.cfg.InProcess {
		return nil
	}
	p, err := a.volumePath(role, persistenceID)
	if err != nil {
		return err
	}
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("agent %s: persistent volume %s of role %s not found", a.cfg.ID.Value, persistenceID, role)
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("agent %s: destroy volume %s: %w", a.cfg.ID.Value, persistenceID, err)
	}
	return nil
}

func (a *Agent) volumePath(role, id string) (string, error) {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\\") {
		return "", fmt.Errorf("agent %s: invalid persistence id %q", a.cfg.ID.Value, id)
	}
	if role == "" {
		role = "*"
	}
	return filepath.Join(a.volumesDir(), strings.ReplaceAll(role, "/", " "), id), nil
}

// volumeOf returns the role, persistence id and container path of a
// persistent-volume resource.
func volumeOf(r mesos.Resource) (role, id, containerPath string, ok bool) {
	if r.Disk == nil || r.Disk.Persistence == nil || r.Disk.Volume == nil {
		return "", "", "", false
	}
	return resourceRole(r), r.Disk.Persistence.ID, r.Disk.Volume.ContainerPath, true
}

// resourceRole is the role a resource is reserved to (top of the
// reservation stack, else the deprecated role), or its allocation role.
func resourceRole(r mesos.Resource) string {
	if n := len(r.Reservations); n > 0 && r.Reservations[n-1].GetRole() != "" {
		return r.Reservations[n-1].GetRole()
	}
	if r.Role != nil && *r.Role != "" && *r.Role != "*" {
		return *r.Role
	}
	if r.AllocationInfo != nil && r.AllocationInfo.GetRole() != "" {
		return r.AllocationInfo.GetRole()
	}
	return "*"
}

// unknownVolumes lists the persistent volumes in res this agent does not
// have. Caller holds mu.
func (a *Agent) unknownVolumes(res []mesos.Resource) []string {
	var missing []string
	for _, r := range res {
		role, id, _, ok := volumeOf(r)
		if !ok {
			continue
		}
		p, err := a.volumePath(role, id)
		if err != nil {
			missing = append(missing, id)
			continue
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			missing = append(missing, id)
		}
	}
	return missing
}

// linkVolumes links every persistent volume in res into the sandbox.
func (a *Agent) linkVolumes(sandbox string, res []mesos.Resource) error {
	for _, r := range res {
		role, id, cp, ok := volumeOf(r)
		if !ok || cp == "" || filepath.IsAbs(cp) || strings.Contains(cp, "/") || cp == "." || cp == ".." {
			continue
		}
		src, err := a.volumePath(role, id)
		if err != nil {
			return err
		}
		link := filepath.Join(sandbox, cp)
		if cur, err := os.Readlink(link); err == nil {
			if cur == src {
				continue
			}
			return fmt.Errorf("sandbox path %s is already linked to %s", cp, cur)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sandbox path %s exists and is not a volume link", cp)
		}
		if err := os.Symlink(src, link); err != nil {
			return fmt.Errorf("failed to link persistent volume %s at %s: %w", id, cp, err)
		}
	}
	return nil
}
