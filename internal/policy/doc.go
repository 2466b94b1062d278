// Package policy turns a joiner policy file (YAML with CEL conditions) into a
// deterministic provisioning Plan for one joiner.
//
// A Policy is parsed once by the worker; every problem in the file is reported
// at once, each naming the field path that is wrong. Plan is a pure function
// of the policy and the joiner's HR attributes: it reads no clock, no
// randomness and no environment, so the workflow can record its result in
// history through an activity and replays see the same plan. The file format
// is documented in testdata/policy/README.md.
package policy
