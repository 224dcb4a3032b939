package mesoscodec

import (
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// newerEnumValues are the enum values that Apache Mesos 1.12.0's v1 protos
// (include/mesos/v1/{mesos,scheduler/scheduler,executor/executor}.proto at
// c1b42f79d, the build CI runs) have and mesos-go v0.0.11's protos lack. A
// real master sends some of them: every SUBSCRIBED lists the master
// capability QUOTA_V2 (../shared/mesos-transcripts/01-subscribe-stream.txt).
//
// They are added to mesos-go's name<->value maps at init, so that JSON
// decoding keeps such a value (instead of failing on it) and encoding and
// String() print its name, as the real master does. Values newer than
// this table are still survived: protobuf keeps any number, and the JSON
// decoder drops an unknown name as stout does (see decode.go).
var newerEnumValues = []struct {
	names  map[int32]string
	values map[string]int32
	name   string
	value  int32
}{
	{mesos.MasterInfo_Capability_Type_name, mesos.MasterInfo_Capability_Type_value, "QUOTA_V2", 3},
	{mesos.CapabilityInfo_Capability_name, mesos.CapabilityInfo_Capability_value, "PERFMON", 1038},
	{mesos.CapabilityInfo_Capability_name, mesos.CapabilityInfo_Capability_value, "BPF", 1039},
	{mesos.CapabilityInfo_Capability_name, mesos.CapabilityInfo_Capability_value, "CHECKPOINT_RESTORE", 1040},
	{mesos.Volume_Source_Type_name, mesos.Volume_Source_Type_value, "CSI_VOLUME", 5},
}

func init() {
	for _, e := range newerEnumValues {
		if _, taken := e.names[e.value]; taken {
			continue // a newer mesos-go already has it
		}
		e.names[e.value] = e.name
		e.values[e.name] = e.value
	}
}
