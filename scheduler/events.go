package scheduler

import (
	"fmt"
	"math"
	"time"

	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// checkEvent says what is missing from an event that cannot be handled:
// a type without its body, or a body without the IDs every use of it
// needs. Such an event is logged and skipped; the stream goes on.
func checkEvent(e *scheduler.Event) error {
	missing := func(what string) error { return fmt.Errorf("%s event without %s", e.GetType(), what) }
	switch e.GetType() {
	case scheduler.Event_SUBSCRIBED:
		if e.Subscribed == nil {
			return missing("its subscribed body")
		}
		if e.Subscribed.FrameworkID == nil || e.Subscribed.FrameworkID.Value == "" {
			return missing("a framework_id")
		}
	case scheduler.Event_OFFERS:
		if e.Offers == nil {
			return missing("its offers body")
		}
		for i, o := range e.Offers.Offers {
			if o.ID.Value == "" || o.AgentID.Value == "" {
				return fmt.Errorf("OFFERS event: offer %d without an id or agent_id", i)
			}
		}
	case scheduler.Event_UPDATE:
		if e.Update == nil {
			return missing("its update body")
		}
		if e.Update.Status.TaskID.Value == "" {
			return missing("a task_id in its status")
		}
	case scheduler.Event_RESCIND:
		if e.Rescind == nil {
			return missing("its rescind body")
		}
	case scheduler.Event_MESSAGE:
		if e.Message == nil {
			return missing("its message body")
		}
	case scheduler.Event_FAILURE:
		if e.Failure == nil {
			return missing("its failure body")
		}
	case scheduler.Event_ERROR:
		if e.Error == nil {
			return missing("its error body")
		}
	}
	return nil
}

// heartbeatInterval is the interval the master announces in SUBSCRIBED,
// or def with the reason when the announced one is unusable (absent, not
// finite, under a millisecond or over an hour): a 0 s interval (or one so
// small it rounds to 0 ns) would make the watchdog drop every subscription
// at once.
func heartbeatInterval(sub *scheduler.Event_Subscribed, def time.Duration) (time.Duration, string) {
	if sub == nil || sub.HeartbeatIntervalSeconds == nil {
		return def, "the master announced no heartbeat interval"
	}
	secs := *sub.HeartbeatIntervalSeconds
	if math.IsNaN(secs) || secs < 0.001 || secs > 3600 {
		return def, fmt.Sprintf("the master announced a heartbeat interval of %v s, outside [0.001, 3600]", secs)
	}
	return time.Duration(secs * float64(time.Second)), ""
}
