package mesossim

import "github.com/dcos-consul/dcos-consul/internal/mesossim/stoutjson"

// The master's JSON conversion (stout's rules) lives in package stoutjson,
// shared with the agents; these names keep the master's code short.

const enumUnset = stoutjson.EnumUnset

func parseJSONBody(body []byte) (interface{}, error) { return stoutjson.Parse(body) }

func jsonToProto(v interface{}, msg interface{}) error { return stoutjson.Decode(v, msg) }

func protoToJSON(msg interface{}) []byte { return stoutjson.Encode(msg) }

func protoText(msg interface{}) string { return stoutjson.Text(msg) }

func formatDouble(x float64) string { return stoutjson.FormatDouble(x) }
